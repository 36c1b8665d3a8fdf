"""Cache locks and the cache store on S3 (a local moto_server): conditional puts and deletes."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

BUCKET = "mlbatch-cache"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    port = _free_port()
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        import boto3

        client = boto3.client("s3")
        for _ in range(100):
            try:
                client.create_bucket(Bucket=BUCKET)
                break
            except Exception:
                time.sleep(0.1)
        else:
            pytest.fail("moto_server did not start")
        yield f"s3://{BUCKET}"
    finally:
        server.terminate()
        server.wait(10)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def test_one_holder_at_a_time_and_release_frees_it(s3):
    from mlbatch.cache.locks import LeaseLock, read_lease

    uri = f"{s3}/d/s/one.lock"
    first, second = LeaseLock(uri, run_id="run-a"), LeaseLock(uri, run_id="run-b")
    assert first.try_acquire()
    assert not second.try_acquire()
    assert second.blocked_by.run_id == "run-a"
    first.release()
    assert read_lease(uri) is None
    assert second.try_acquire()
    second.release()


def test_renewal_and_expiry_are_conditional_on_the_etag(s3):
    from mlbatch.cache.locks import LeaseLock, read_lease

    uri = f"{s3}/d/s/two.lock"
    beating = LeaseLock(uri, run_id="run-a", lease_s=0.5, renew_s=0.1)
    assert beating.try_acquire()
    first = read_lease(uri)
    time.sleep(1.0)
    renewed = read_lease(uri)
    assert renewed.expires_at > first.expires_at and renewed.version != first.version
    assert not LeaseLock(uri, run_id="run-b").try_acquire()
    beating.release()

    hung = LeaseLock(uri, run_id="run-hung", lease_s=0.2, renew_s=3600)
    assert hung.try_acquire()
    time.sleep(0.3)
    taker = LeaseLock(uri, run_id="run-c")
    assert taker.try_acquire()  # broke the expired lease
    hung.release()  # its delete must not match run-c's ETag
    assert read_lease(uri).run_id == "run-c"
    taker.release()


def test_contending_threads_compute_once_on_s3(s3):
    from mlbatch.cache.locks import LeaseLock
    from workers import artifacts

    uri = f"{s3}/d/s/three.lock"
    result = f"{s3}/d/s/three/manifest.json"
    computed: list[str] = []
    start = threading.Barrier(3)

    def step(name: str) -> None:
        start.wait()
        with LeaseLock(uri, run_id=name, poll_s=0.05):
            if not artifacts.exists(result):
                time.sleep(0.3)
                artifacts.write_json(result, {"run": name})
                computed.append(name)

    threads = [threading.Thread(target=step, args=(f"run-{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(computed) == 1


def test_cache_store_lists_and_collects_on_s3(s3):
    from mlbatch.cache import store as cache_store
    from workers import artifacts

    old = f"{s3}/b/step/aaaaaaaaaaaaaaaaaaaa"
    new = f"{s3}/b/step/bbbbbbbbbbbbbbbbbbbb"
    artifacts.write_bytes(f"{old}/shard-00000/data.bin", b"x" * 100)
    artifacts.write_json(f"{old}/manifest.json", {"committed_at": "2020-01-01T00:00:00+00:00", "run": {"run_id": "r0"}})
    artifacts.write_json(f"{new}/manifest.json", {"committed_at": "2020-01-02T00:00:00+00:00", "run": {"run_id": "r1"}})
    artifacts.publish_latest(s3, "b", "step", new, "r1")

    items = {e.key: e for e in cache_store.entries(s3, "b")}
    assert set(items) == {"a" * 20, "b" * 20} and items["b" * 20].latest

    result = cache_store.gc(s3, timedelta(days=30), dag_id="b", log=lambda line: None)
    assert [e.key for e in result.deleted] == ["a" * 20]
    assert not artifacts.exists(f"{old}/manifest.json")
    assert not artifacts.exists(f"{old}/shard-00000/data.bin")
    assert artifacts.exists(f"{new}/manifest.json")
