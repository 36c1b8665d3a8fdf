"""`mlbatch deploy --image-tag TAG [--dry-run]`: register the definitions the specs need.

One AWS Batch job definition and one ECS task definition per worker image any step names
(see backends/aws_batch/definitions.py and backends/ecs/definitions.py).
Idempotent: a definition whose content is unchanged is not registered again, so CI can
run it on every tag push. Prints what it registers, or with --dry-run what it would.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from mlbatch.settings import Settings, SettingsError, load_settings


def images_in_specs(specs_dir: Path) -> tuple[set[str], list[str]]:
    """Every worker image a step of a spec names, and the specs that could not be read."""
    from mlbatch.spec.loader import load_spec
    from mlbatch.spec.problems import SpecError

    images: set[str] = set()
    broken: list[str] = []
    for path in sorted(specs_dir.glob("*.y*ml")):
        try:
            images.update(step.image for step in load_spec(path).resolved_steps().values())
        except (SpecError, ValueError) as error:
            broken.append(f"{path}: {str(error).splitlines()[0]}")
    return images, broken


def deploy(specs_dir: Path, image_tag: str | None, dry_run: bool, *, settings: Settings | None = None,
           jobs: Any = None, tasks: Any = None, out: Callable[[str], None] = print) -> int:
    from mlbatch.backends.aws_batch.client import BatchJobs
    from mlbatch.backends.aws_batch.definitions import plan
    from mlbatch.backends.ecs import definitions as ecs_definitions
    from mlbatch.backends.ecs.client import EcsTasks

    try:
        settings = settings or load_settings()
    except SettingsError as error:
        out(f"mlbatch deploy: {error}")
        return 1
    images, broken = images_in_specs(specs_dir)
    if broken:
        for problem in broken:
            out(f"mlbatch deploy: cannot read {problem}")
        out("mlbatch deploy: fix these specs first (make lint); nothing registered")
        return 1
    registries = [
        ("batch", jobs or BatchJobs(settings.aws.conn_id, settings.aws.region), None),
        ("ecs", tasks or EcsTasks(settings.aws.conn_id, settings.aws.region), ecs_definitions.definition),
    ]
    changes = total = 0
    for kind, registry, make in registries:
        for definition, action in plan(images, settings, image_tag, registry, make):
            total += 1
            what = f"{kind:<5} {definition.name}  {definition.image}"
            if action == "unchanged":
                out(f"unchanged       {what}  (content {definition.content_hash})")
                continue
            changes += 1
            if dry_run:
                out(f"would register  {what}  (content {definition.content_hash})")
            else:
                arn = registry.register_definition(definition.register_args)
                out(f"registered      {what}  -> {arn}")
    verb = "would register" if dry_run else "registered"
    out(f"{len(images)} image(s), {changes} definition(s) {verb}, {total - changes} unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(deploy(Path("dags/specs"), None, dry_run=True))
