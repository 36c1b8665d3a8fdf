"""MLflow tracking against a real local store (SQLite in a temp dir): parents, nested runs, hits, races."""
from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.metrics import roc_auc_score

from mlbatch.tracking import runs
from mlbatch.tracking.content import StepRecord
from mlbatch.tracking.steps import track_step
from mlbatch.tracking.store import open_command, open_hint, run_page, shown, store_lock, tracking_uri
from tests.unit.workers.steps import run_step
from workers import artifacts

PROJECT = Path(__file__).resolve().parents[3]
RUN = "manual__2026-01-02T03:04:05+00:00"


@pytest.fixture(scope="module")
def steps(tmp_path_factory) -> dict[str, dict]:
    """Committed manifests of a 3-fold train.gbdt and an ensemble.stack over it (with plots)."""
    tmp = tmp_path_factory.mktemp("steps")
    feats = run_step(tmp, "features", "features.synthetic", params={"rows": 600, "seed": 5})
    train = run_step(tmp, "train", "train.gbdt", shards=3, params={"max_iter": 10}, inputs={"features": feats})
    stack = run_step(tmp, "ensemble", "ensemble.stack", params={"importance_rows": 100},
                     inputs={"features": feats, "train": train})
    out = {}
    for name, uri in [("train", train), ("ensemble", stack)]:
        manifest = artifacts.read_step_manifest(uri)
        manifest["cache"] = {"code_version": "git:abc123"}
        out[name] = manifest
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(autouse=True)
def _default_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _record(steps, step: str, key: str, run_id: str = RUN) -> StepRecord:
    worker = {"train": "train.gbdt", "ensemble": "ensemble.stack"}[step]
    return StepRecord("churn_training", run_id, step, worker, key, steps[step])


def _client(root: str) -> MlflowClient:
    return MlflowClient(tracking_uri(root))


def _step_runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("churn_training").experiment_id
    return client.search_runs([experiment], "tags.`mlbatch.kind` = 'step'")


def test_default_store_is_sqlite_under_the_artifact_root_and_the_env_overrides(tmp_path, monkeypatch):
    assert tracking_uri(str(tmp_path)) == f"sqlite:///{tmp_path}/mlflow/mlflow.db"
    assert tracking_uri("s3://bucket/artifacts") is None  # no local file for SQLite: needs a server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert tracking_uri(str(tmp_path)) == "http://mlflow.internal:5000"


def test_without_a_served_ui_the_hint_is_the_command_that_serves_one(monkeypatch):
    monkeypatch.delenv("MLBATCH_MLFLOW_UI", raising=False)
    command = open_command("sqlite:////x/mlflow.db")
    # the project's mlflow-skinny has no web pages: the full package serves them
    assert command.startswith("mlflow ui --backend-store-uri sqlite:////x/mlflow.db (the full mlflow package: "
                              "pip install mlflow")
    assert "`mlbatch up` serves this UI itself" in command
    assert open_hint("sqlite:////x/mlflow.db", "P") == f"open it with: {command}, then P"


def test_where_mlbatch_up_serves_the_ui_the_hint_is_its_address(monkeypatch):
    monkeypatch.setenv("MLBATCH_MLFLOW_UI", "http://127.0.0.1:5123")
    assert open_command("sqlite:////x/mlflow.db") == (
        "open http://127.0.0.1:5123 in a browser (MLflow's UI, served by `mlbatch up`)")
    page = run_page("sqlite:////x/mlflow.db", "1", "r")
    assert page == "http://127.0.0.1:5123/#/experiments/1/runs/r"
    assert open_hint("sqlite:////x/mlflow.db", page) == f"its page: {page}"
    # a tracking server serves its own UI, wherever mlbatch up runs
    assert open_command("https://u:pw@ml.example.com") == "open https://u:***@ml.example.com in a browser"


def test_train_step_becomes_a_nested_run_with_params_fold_metrics_model_and_tags(steps, root):
    where = track_step(_record(steps, "train", "k-train"), root=root, cache_hit=False, log=logging.getLogger("t"))
    client = _client(root)
    run = client.get_run(where["run_id"])
    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["mlbatch.run_id"] == RUN and parent.data.tags["mlbatch.dag_id"] == "churn_training"
    assert parent.info.run_name == RUN

    tags = run.data.tags
    assert {k: tags[k] for k in ("mlbatch.dag_id", "mlbatch.run_id", "mlbatch.step", "mlbatch.worker",
                                 "mlbatch.cache_key", "mlbatch.code_version")} == {
        "mlbatch.dag_id": "churn_training", "mlbatch.run_id": RUN, "mlbatch.step": "train",
        "mlbatch.worker": "train.gbdt", "mlbatch.cache_key": "k-train", "mlbatch.code_version": "git:abc123"}
    assert run.info.run_name == "train"
    assert run.data.params["max_iter"] == "10" and run.data.params["shards"] == "3"
    assert run.data.params["max_depth"] == "null"  # defaults filled in, as the worker saw them

    shards = steps["train"]["shards"]
    history = client.get_metric_history(run.info.run_id, "fold_auc")
    assert sorted((m.step, m.value) for m in history) == [(s["shard_index"], s["metrics"]["auc"]) for s in shards]
    assert run.data.metrics["fold_1_logloss"] == pytest.approx(shards[1]["metrics"]["logloss"])
    oof = pd.concat(artifacts.read_parquet(s["outputs"]["oof"]) for s in shards)
    assert run.data.metrics["auc"] == pytest.approx(roc_auc_score(oof["y"], oof["pred"]))  # over every fold
    assert run.data.metrics["mean_fold_auc"] == pytest.approx(sum(s["metrics"]["auc"] for s in shards) / 3)

    files = {f.path for f in client.list_artifacts(run.info.run_id, "model/shard-00001")}
    assert files == {"model/shard-00001/model.joblib"}
    assert "mlflow ui --backend-store-uri sqlite:///" in where["open"]


def test_the_task_log_links_the_run_on_the_ui_mlbatch_up_serves(steps, root, monkeypatch, caplog):
    monkeypatch.setenv("MLBATCH_MLFLOW_UI", "http://127.0.0.1:5123")
    with caplog.at_level(logging.INFO):
        where = track_step(_record(steps, "train", "k-train"), root=root, cache_hit=False, log=logging.getLogger("t"))
    assert where["page"].startswith("http://127.0.0.1:5123/#/experiments/")
    assert f"; its page: {where['page']}" in caplog.text and "mlflow ui" not in caplog.text


def test_ensemble_run_has_the_plots_and_shares_the_parent(steps, root):
    log = logging.getLogger("t")
    train = track_step(_record(steps, "train", "k-train"), root=root, cache_hit=False, log=log)
    ens = track_step(_record(steps, "ensemble", "k-ens"), root=root, cache_hit=False, log=log)
    client = _client(root)
    run = client.get_run(ens["run_id"])
    assert run.data.tags["mlflow.parentRunId"] == client.get_run(train["run_id"]).data.tags["mlflow.parentRunId"]
    assert {f.path for f in client.list_artifacts(run.info.run_id, "plots")} == {
        "plots/roc.png", "plots/calibration.png", "plots/importance.png"}
    assert run.data.metrics["auc"] == steps["ensemble"]["metrics"]["auc"]
    assert run.data.metrics["auc_train"] == steps["ensemble"]["metrics"]["auc_train"]
    assert run.data.params["method"] == "stack"


def test_remote_models_are_pointed_at_and_remote_plots_copied_into_the_run(tmp_path):
    import fsspec

    memory = fsspec.filesystem("memory")
    outputs = {}
    for shard in (0, 1):
        for name in ("model.joblib", "roc.png"):
            memory.pipe(f"/remote/shard-{shard}/{name}", b"bytes of " + name.encode())
        outputs[shard] = {"model": f"memory://remote/shard-{shard}/model.joblib",
                          "roc.png": f"memory://remote/shard-{shard}/roc.png"}
    manifest = {"shards": [{"shard_index": i, "outputs": outputs[i]} for i in (0, 1)], "step_uri": "memory://remote"}
    record = StepRecord("churn_training", RUN, "train", "train.gbdt", "k-remote", manifest)
    client = _client(str(tmp_path))
    run = client.create_run(runs.experiment_id(client, "remote", (tmp_path / "artifacts").as_uri()))
    remote_models = runs.log_outputs(client, run.info.run_id, record)
    assert remote_models == [outputs[0]["model"], outputs[1]["model"]]
    runs.finish_step_run(client, run.info.run_id, remote_models)
    finished = client.get_run(run.info.run_id)
    assert finished.data.tags["mlbatch.model_uris"] == ",".join(remote_models)
    assert finished.info.status == "FINISHED"
    assert [f.path for f in client.list_artifacts(run.info.run_id, "plots/shard-00001")] == [
        "plots/shard-00001/roc.png"]


def test_a_retry_and_a_cache_hit_log_nothing_new_and_name_the_original(steps, root, caplog):
    log = logging.getLogger("t")
    first = track_step(_record(steps, "train", "k-hit"), root=root, cache_hit=False, log=log)
    before = len(_step_runs(_client(root)))
    again = track_step(_record(steps, "train", "k-hit"), root=root, cache_hit=False, log=log)  # retried task
    with caplog.at_level(logging.INFO):
        hit = track_step(_record(steps, "train", "k-hit"), root=root, cache_hit=True, log=log)
    assert again["run_id"] == first["run_id"] == hit["run_id"] and hit["computed_by"] == RUN
    assert len(_step_runs(_client(root))) == before
    assert f"computed by Airflow run {RUN}, logged as run {first['run_id']}" in caplog.text
    assert track_step(_record(steps, "train", "never-logged"), root=root, cache_hit=True, log=log) is None


def test_parent_race_between_two_processes_ends_with_one_parent(tmp_path):
    """Two steps of one run finish together in two processes, on a store neither has created yet."""
    uri = tracking_uri(str(tmp_path))
    script = (
        "import sys, time, pathlib\n"
        "from mlbatch.tracking import runs, store\n"
        "uri, me, go = sys.argv[1:]\n"
        "pathlib.Path(me).touch()\n"
        "while not pathlib.Path(go).exists(): time.sleep(0.01)\n"
        "with store.store_lock(uri, 'r'):\n"
        "    client = runs.client(uri)\n"
        "    e = runs.experiment_id(client, 'race', None)\n"
        "    print(runs.parent_run(client, e, 'race', 'manual__1'))\n")
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", script, uri, str(tmp_path / f"ready{i}"), str(go)],
                              stdout=subprocess.PIPE, text=True, cwd=PROJECT) for i in range(2)]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    ids = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("race").experiment_id
    assert ids[0] == ids[1] and runs.parents(client, experiment, "manual__1") == [ids[0]]


def test_parent_created_twice_is_deduplicated_to_the_oldest(tmp_path, monkeypatch):
    """A store without our lock (a server): another process created its parent between our search and create."""
    client = MlflowClient(tracking_uri(str(tmp_path)))
    experiment = runs.experiment_id(client, "race", None)
    theirs = client.create_run(experiment, run_name="r", tags={"mlbatch.kind": "batch", "mlbatch.run_id": "r"})
    real, calls = runs.parents, []

    def search(*args):
        calls.append(args)
        return [] if len(calls) == 1 else real(*args)  # our first search came before their create

    monkeypatch.setattr(runs, "parents", search)
    assert runs.parent_run(client, experiment, "race", "r") == theirs.info.run_id
    assert real(client, experiment, "r") == [theirs.info.run_id]  # ours was deleted


def test_tracking_failure_is_a_warning_never_an_error(steps, tmp_path, caplog):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the store's folder should be")
    with caplog.at_level(logging.WARNING):
        where = track_step(_record(steps, "train", "k"), root=str(blocked), cache_hit=False,
                           log=logging.getLogger("t"))
    assert where is None
    assert "MLflow: could not track step train" in caplog.text and "the step itself succeeded" in caplog.text


def test_a_password_in_the_tracking_uri_never_reaches_the_log(steps, tmp_path, monkeypatch, caplog):
    # a server that is not there: the failure's warning names the server, never its password
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://ml:s3cr3t-t0ken@127.0.0.1:9/")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with caplog.at_level(logging.INFO):
        assert track_step(_record(steps, "train", "k"), root=str(tmp_path), cache_hit=False,
                          log=logging.getLogger("t")) is None
    assert "http://ml:***@127.0.0.1:9/" in caplog.text and "s3cr3t-t0ken" not in caplog.text
    assert shown("postgresql://mlflow:pw@db:5432/mlflow") == "postgresql://mlflow:***@db:5432/mlflow"
    assert shown("sqlite:////tmp/a/mlflow.db") == "sqlite:////tmp/a/mlflow.db"
    assert "pw" not in open_command("https://u:pw@mlflow.example.com")


def test_remote_artifact_root_without_a_server_is_not_tracked(steps, caplog):
    with caplog.at_level(logging.INFO):
        assert track_step(_record(steps, "train", "k"), root="s3://bucket/a", cache_hit=False,
                          log=logging.getLogger("t")) is None
    assert "set MLFLOW_TRACKING_URI" in caplog.text


def test_store_lock_serialises_sqlite_writers(tmp_path):
    uri = tracking_uri(str(tmp_path))
    with store_lock(uri, "a"):
        assert Path(f"{tmp_path}/mlflow/mlflow.db.lock").exists()
    assert not Path(f"{tmp_path}/mlflow/mlflow.db.lock").exists()


def test_overall_metrics_and_task_come_from_the_manifest_alone():
    """No out-of-fold file is read (these do not exist): the worker committed the metrics over every fold."""
    shards = [{"shard_index": i, "metrics": {"rmse": 50.0 + i}, "outputs": {"oof": f"/nowhere/shard-{i}/oof.parquet"}}
              for i in range(2)]
    manifest = {"task": "regression", "metrics": {"rmse": 50.7, "mae": 40.1, "folds": 2}, "shards": shards}
    record = StepRecord("diabetes", RUN, "gbdt", "train.gbdt", "k", manifest)
    assert record.overall_metrics() == {"rmse": 50.7, "mae": 40.1, "folds": 2.0, "mean_fold_rmse": 50.5}
    assert record.tags()["mlbatch.task"] == "regression"


def test_tracking_imports_no_worker_code():
    import ast

    package = Path(__file__).resolve().parents[3] / "plugins" / "mlbatch" / "tracking"
    imported = set()
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    contract = {"workers.wire", "workers.step_output"}  # the wire and the store layout, shared on purpose
    assert not {name for name in imported - contract if name.split(".")[0] in ("workers", "pandas", "numpy", "sklearn")}


QUIET = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(name)s: %(message)s")
from mlbatch.tracking import runs
mlflow = runs.client(sys.argv[1])
runs.experiment_id(mlflow, "quiet", None)
"""


def test_mlflow_logs_through_the_process_logging_at_its_real_level(tmp_path):
    """Airflow shows a task's stderr as ERROR lines: MLflow's INFO lines must not go there."""
    env = {k: v for k, v in __import__("os").environ.items() if k != "MLFLOW_CONFIGURE_LOGGING"}
    done = subprocess.run([sys.executable, "-c", QUIET, f"sqlite:///{tmp_path}/mlflow.db"], env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    assert "INFO mlflow.store.db.utils: Creating initial MLflow database tables" in done.stdout
    assert "mlflow" not in done.stderr


def test_the_store_is_prepared_ahead_of_the_first_step(tmp_path):
    from mlbatch.tracking.steps import prepare_store

    uri = prepare_store(str(tmp_path))
    assert uri == f"sqlite:///{tmp_path}/mlflow/mlflow.db" and (tmp_path / "mlflow" / "mlflow.db").stat().st_size > 0
    assert prepare_store("s3://bucket/root") is None
