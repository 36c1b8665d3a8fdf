"""`mlbatch <command>` (or `python -m mlbatch`): the command line of the project.

It finds the project from any folder inside it and runs every command with the project's
Airflow settings (see mlbatch.cli.project).

Each command is a (name, help, add_arguments, handler) entry in COMMANDS; a handler takes the
parsed arguments and returns the exit status. Adding a command is adding one entry.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

from mlbatch.cli import project

DEFAULT_SPECS_DIR = Path("dags/specs")  # both relative to the project root
DEFAULT_DAGS_DIR = Path("dags")


class Command(NamedTuple):
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]


def add_lint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, default=[DEFAULT_SPECS_DIR], metavar="PATH",
                        help=f"spec files or directories of specs (default: {DEFAULT_SPECS_DIR})")


def run_lint(args: argparse.Namespace) -> int:
    from mlbatch.spec.lint import lint_specs

    files, problems = lint_specs(_in_project(path) for path in args.paths)
    errors = sum(problem.severity == "error" for problem in problems)
    warnings = len(problems) - errors
    for problem in problems:
        print(problem)
    print(f"{len(files)} spec(s) checked, {errors} error(s), {warnings} warning(s)")
    return 1 if errors else 0


def _in_project(path: Path) -> Path:
    """The default paths are the project's, wherever the command runs (shown relative to the working
    directory, as a user would type them); a path the user gave stays as given."""
    import os

    root = project.find_root()
    if root is None or path not in (DEFAULT_SPECS_DIR, DEFAULT_DAGS_DIR):
        return path
    return Path(os.path.relpath(root / path))


def add_new_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="batch name (letters, digits, underscores)")
    parser.add_argument("--dags", type=Path, default=DEFAULT_DAGS_DIR,
                        help="the dags folder (default: the project's dags, or ./dags outside a project)")
    parser.add_argument("--loader-only", action="store_true",
                        help="only write the loader dags/NAME.py of an existing spec dags/specs/NAME.yaml")
    parser.add_argument("--source", help="your table (CSV or Parquet path or URI): the spec trains on it")
    parser.add_argument("--label", help="with --source: the column to predict (its values tell the task)")


def run_new(args: argparse.Namespace) -> int:
    from mlbatch.cli.scaffold import create_batch, create_loader

    try:
        if args.loader_only:
            written = create_loader(_in_project(args.dags), args.name)
        else:
            written = create_batch(_in_project(args.dags), args.name, _table_spec(args))
    except (ValueError, FileExistsError) as error:
        print(f"mlbatch new: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    if not args.loader_only:
        print(f"next: edit {written[0]}, then `mlbatch lint` and `mlbatch demo {args.name}`")
    return 0


def _table_spec(args: argparse.Namespace) -> str | None:
    """The spec for --source and --label (None without them: the synthetic example)."""
    if args.source is None and args.label is None:
        return None
    if args.source is None or args.label is None:
        raise ValueError("give --source and --label together: the table and the column to predict")
    from mlbatch.cli.table_spec import spec_source, table_spec

    named, located = spec_source(args.source, project.find_root())
    return table_spec(args.name, named, args.label, located)


def add_dag_ids(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dag_ids", nargs="+", metavar="DAG_ID")


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    add_dag_ids(parser)
    parser.add_argument("--run-id", help="a run of the (single) DAG given; default: its latest run")


def run_report(args: argparse.Namespace) -> int:
    from mlbatch.cli.report import collect, format_report

    for dag_id in args.dag_ids:
        try:
            print(format_report(collect(dag_id, args.run_id)))
        except LookupError as error:
            print(f"mlbatch report: {error}", file=sys.stderr)
            return 1
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from mlbatch.cli.demo import main as demo

    return demo(args.dag_ids)


def add_up_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--postgres", action="store_true",
                        help="metadata DB on a PostgreSQL cluster of its own under AIRFLOW_HOME (default: SQLite)")
    parser.add_argument("--mlflow-port", type=int, default=5000,
                        help="port of MLflow's UI for the project's tracking store (default: 5000; 0: no UI)")


def run_up(args: argparse.Namespace) -> int:
    from mlbatch.cli.up import main as up

    return up(args.port, postgres=args.postgres, mlflow_port=args.mlflow_port)


def add_cache_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    ls = actions.add_parser("ls", help="list cached step outputs: key, committed at, run, size")
    gc = actions.add_parser("gc", help="delete cached step outputs older than a given age")
    gc.add_argument("--older-than", required=True, metavar="AGE",
                    help="age such as 30d, 12h or 90m (committed before now minus AGE)")
    gc.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    for sub in (ls, gc):
        sub.add_argument("--dag", metavar="DAG_ID", help="only this batch's outputs")
        sub.add_argument("--root", metavar="URI", help="artifact root (default: MLBATCH_ARTIFACTS or ./artifacts)")


def run_cache(args: argparse.Namespace) -> int:
    from mlbatch.cache import store as cache_store
    from mlbatch.run.paths import artifact_root
    from mlbatch.spec.units import parse_duration

    root = args.root or artifact_root()
    if args.cache_command == "ls":
        print(cache_store.format_entries(cache_store.entries(root, args.dag)))
        return 0
    try:
        older_than = parse_duration(args.older_than)
    except ValueError as error:
        print(f"mlbatch cache gc: --older-than: {error}", file=sys.stderr)
        return 2
    cache_store.gc(root, older_than, dag_id=args.dag, dry_run=args.dry_run)
    return 0


def add_deploy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image-tag", metavar="TAG", help="worker image tag, e.g. the git sha (default: [image] tag "
                        "of the settings, or MLBATCH_IMAGE_TAG)")
    parser.add_argument("--dry-run", action="store_true", help="only say what would be registered")
    parser.add_argument("--specs", type=Path, default=DEFAULT_SPECS_DIR, metavar="DIR",
                        help=f"the specs whose worker images need definitions (default: {DEFAULT_SPECS_DIR})")


def run_deploy(args: argparse.Namespace) -> int:
    from mlbatch.cli.deploy import deploy

    return deploy(_in_project(args.specs), args.image_tag, args.dry_run)


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from-stack", required=True, metavar="STACK",
                        help="the CloudFormation stack made from deploy/cloudformation/mlbatch.yaml")
    parser.add_argument("--format", choices=("toml", "env"), default="toml",
                        help="toml: a mlbatch.toml; env: MLBATCH_* lines for docker compose's .env (default: toml)")
    parser.add_argument("--region", help="the stack's region (default: AWS_REGION / AWS_DEFAULT_REGION / your profile's)")


def run_settings(args: argparse.Namespace) -> int:
    from mlbatch.cli import stack_settings
    from mlbatch.settings import SettingsError, load_settings

    try:
        conn_id = load_settings().aws.conn_id
        outputs = stack_settings.stack_outputs(args.from_stack, args.region)
        values = stack_settings.settings_values(outputs, args.from_stack)
    except SettingsError as error:
        print(f"mlbatch settings: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - no such stack, no credentials: say it in one line
        print(f"mlbatch settings: cannot read stack {args.from_stack!r}: {error}", file=sys.stderr)
        return 1
    render = stack_settings.as_env(values, args.from_stack) if args.format == "env" else \
        stack_settings.as_toml(values, args.from_stack, conn_id)
    print(render, end="")
    return 0


def add_airflow_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("airflow_args", nargs=argparse.REMAINDER, metavar="ARGS",
                        help="any airflow command line, e.g. dags list, dags trigger NAME, db migrate")


def run_airflow(args: argparse.Namespace) -> int:
    """Airflow's own command line with the project's settings (what `mlbatch` itself uses)."""
    import os

    from mlbatch.cli.airflow_home import airflow_command

    airflow = airflow_command()
    os.execv(airflow, [airflow, *args.airflow_args])
    return 1  # not reached: execv replaces this process


def add_compose_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("compose_args", nargs=argparse.REMAINDER, metavar="ARGS",
                        help="up: write .env once, build what is missing, start and wait; build: the same without starting; "
                             "else any compose command")


def run_compose(args: argparse.Namespace) -> int:
    from mlbatch.cli.compose import main as compose

    return compose(args.compose_args or ["up"], project.find_root() or Path.cwd())


COMMANDS: list[Command] = [
    Command("lint", "check batch spec files; exit 1 on any error", add_lint_arguments, run_lint),
    Command("new", "write a new batch: dags/specs/NAME.yaml and its loader dags/NAME.py", add_new_arguments, run_new),
    Command("report", "summarise the latest run of batches from Airflow's metadata DB", add_report_arguments, run_report),
    Command("demo", "run batches through Airflow (airflow dags test) and summarise them", add_dag_ids, run_demo),
    Command("up", "start Airflow's web UI, scheduler, dag-processor and triggerer", add_up_arguments, run_up),
    Command("cache", "see and clean cached step outputs: cache ls | cache gc --older-than 30d",
            add_cache_arguments, run_cache),
    Command("deploy", "register the AWS Batch job definitions the specs need (idempotent)",
            add_deploy_arguments, run_deploy),
    Command("settings", "print the settings (mlbatch.toml or .env lines) from a CloudFormation stack's outputs",
            add_settings_arguments, run_settings),
    Command("compose", "the team's stack (docker-compose.yaml): compose up | compose build | compose logs | compose down",
            add_compose_arguments, run_compose),
    Command("airflow", "run an airflow command with this project's settings (dags, plugins, home, no examples)",
            add_airflow_arguments, run_airflow),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlbatch", description="Run ML batches described by YAML specs.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(handler=command.handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    project.configure()  # before any command imports Airflow, which reads its settings at import
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
