"""Fixtures shared by the integration tests: the Slack stand-in, and the local AWS stand-in (one per module)."""
from __future__ import annotations

import os

import pytest

from tests.integration.airflow_run import migrate_db
from tests.integration.aws_stand_in import PROJECT, AwsStandIn
from tests.integration.slack_server import RecordingWebhook


@pytest.fixture
def slack():
    """The Slack stand-in, recording what each test's alerts post."""
    with RecordingWebhook() as server:
        yield server


@pytest.fixture(scope="module")
def aws(tmp_path_factory, docker_client, worker_image):
    """moto_server with Batch, ECS, S3 and logs, the definitions of dags/specs deployed, every job run as a
    container of `worker_image`; this process's environment points at it (it is the deploy CLI and the
    backend-level tests' Airflow side)."""
    stand_in = AwsStandIn(docker_client, worker_image).start()
    settings = tmp_path_factory.mktemp("settings") / "mlbatch.toml"
    settings.write_text(stand_in.settings_text())
    stand_in.settings_file = settings
    saved = dict(os.environ)
    os.environ.update({**stand_in.airflow_env(), "MLBATCH_SETTINGS": str(settings)})
    migrate_db()
    from mlbatch.cli.deploy import deploy

    assert deploy(PROJECT / "dags" / "specs", None, dry_run=False, out=lambda line: None) == 0
    try:
        yield stand_in
    finally:
        os.environ.clear()
        os.environ.update(saved)
        stand_in.stop()


def aws_env(aws: AwsStandIn, **extra: str) -> dict[str, str]:
    """The environment of an Airflow run against the stand-in."""
    return {**aws.airflow_env(), "MLBATCH_SETTINGS": str(aws.settings_file), **extra}
