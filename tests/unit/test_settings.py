"""Deployment settings: one file, MLBATCH_* overrides, errors that say what to set where."""
from __future__ import annotations

from datetime import timedelta

import pytest

from mlbatch.settings import SettingsError, load_settings

TOML = """
[aws]
conn_id = "aws_prod"
region = "eu-west-1"
job_role_arn = "arn:aws:iam::1:role/job"
[batch]
poll_interval = "5s"
[batch.queues]
cpu = "ml-cpu"
gpu-spot = "ml-gpu-spot"
"""


def test_file_values_and_env_overrides(tmp_path, monkeypatch):
    path = tmp_path / "mlbatch.toml"
    path.write_text(TOML)
    monkeypatch.setenv("MLBATCH_AWS_REGION", "us-west-2")
    monkeypatch.setenv("MLBATCH_BATCH_QUEUE_GPU_SPOT", "other-gpu-spot")
    monkeypatch.setenv("MLBATCH_IMAGE_TAG", "3f9c2e1")
    settings = load_settings(path)
    assert settings.aws.conn_id == "aws_prod" and settings.aws.region == "us-west-2"
    assert settings.queue("cpu") == "ml-cpu" and settings.queue("gpu-spot") == "other-gpu-spot"
    assert settings.image.tag == "3f9c2e1" and settings.batch.poll_interval == timedelta(seconds=5)
    assert settings.source == str(path)


def test_a_missing_queue_says_where_to_set_it(tmp_path):
    path = tmp_path / "mlbatch.toml"
    path.write_text(TOML)
    with pytest.raises(SettingsError) as info:
        load_settings(path).queue("gpu")
    assert str(info.value) == (f"no AWS Batch job queue for role 'gpu' in {path}: "
                               "set [batch.queues] gpu = \"<queue name>\" there, or MLBATCH_BATCH_QUEUE_GPU")


def test_no_file_means_defaults(tmp_path):
    settings = load_settings(tmp_path / "absent.toml")
    assert settings.aws.conn_id == "aws_default" and settings.batch.deferrable is True
    assert "not found" in settings.source


@pytest.mark.parametrize("text, says", [
    ("[aws\nregion = 1", "not valid TOML"),
    ("[batch]\nspot_retries = 42", "batch.spot_retries"),
    ("[batch.queues]\ngpu_spot = 'x'", "batch.queues.gpu_spot"),
    ("[bacth]\nx = 1", "bacth"),
])
def test_bad_settings_name_the_file_and_the_field(tmp_path, text, says):
    path = tmp_path / "mlbatch.toml"
    path.write_text(text)
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    assert str(path) in str(info.value) and says in str(info.value)


def test_the_example_settings_file_is_valid():
    from mlbatch.run.paths import PROJECT_ROOT

    settings = load_settings(PROJECT_ROOT / "mlbatch.example.toml")
    assert set(settings.batch.queues) == {"cpu", "gpu", "cpu-spot", "gpu-spot"}
    assert settings.artifacts.root.startswith("s3://")
