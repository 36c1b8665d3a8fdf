"""A local AWS for the Batch and ECS backends' tests: moto_server on 127.0.0.1 that runs each job in a container.

moto's Batch without Docker marks every job SUCCEEDED at once and runs nothing, so a
step would "succeed" without writing an output. The server runs here in-process
(ThreadedMotoServer: the same HTTP endpoint boto3 and the Amazon provider talk to), and
its no-Docker job hook is replaced by ContainerJobRunner, which does what a Batch host
does: takes the job from RUNNABLE and runs it as a container of the worker image
(tests/containers/run.py): the job definition's image (the deployment's ECR name maps to
the image built from this checkout, and `images` maps other references, a team's image, to local tags), the image's ENTRYPOINT and the submitted command, the
definition's and the submission's environment (plus AWS_BATCH_JOB_ID and, for array
children, AWS_BATCH_JOB_ARRAY_INDEX), its resourceRequirements as hard --cpus / --memory
limits, on the host network so that S3 is moto's on 127.0.0.1. Its output goes to
CloudWatch Logs under the job's log stream; the job ends SUCCEEDED or FAILED by the
container's exit code, and a kernel OOM kill is reported as Batch reports it (exit 137,
"OutOfMemoryError: Container killed due to memory usage"). Terminating a job kills its
container (and an array parent's children). `hold()` keeps jobs RUNNABLE, the way a queue
without capacity does. ECS tasks get the same treatment: RunTask's task runs the task
definition's container with its overrides, the task's cpu and memory as limits, logs to
the awslogs group and prefix, and stops with the container's exit code and reason as ECS
gives them; StopTask kills it. moto's own task state machine is frozen so that only the
real container moves a task. Credentials reach a container as a job role's do
(job_role.py): never as a key in its environment.

What this does not cover: GPUs (a GPU job runs the CPU image on CPU), Batch's own retry
attempts and evaluateOnExit matching, spot reclaims, throttling (all unit-tested with
exact calls).
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from moto.logs.models import logs_backends

from tests.containers.run import ContainerExit, ContainerJob, argv_of, run
from tests.integration.job_role import JobRoleCredentials

PROJECT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
BUCKET = "mlbatch-artifacts"
QUEUES = {"cpu": "mlbatch-cpu", "gpu": "mlbatch-gpu", "cpu-spot": "mlbatch-cpu-spot", "gpu-spot": "mlbatch-gpu-spot"}
# the Airflow side's key for moto (which takes any): plainly not an AWS key, and distinctive, so that a
# test can tell it never reached a container
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "mlbatch-test-airflow-key-id", "AWS_SECRET_ACCESS_KEY": "mlbatch-test-not-a-secret"}
REPOSITORY = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/mlbatch-worker"
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"
EXITED_REASON = "Essential container in task exited"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pairs(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {item["name"]: item["value"] for item in items or []}


def _pull_failure(image: str) -> str:
    return f"CannotPullContainerError: {image}: not found (the stand-in has only the worker image built here)"


class ContainerJobRunner:
    """Runs the Batch jobs and ECS tasks moto accepted as containers of the worker image (see the module doc)."""

    def __init__(self, client: Any, image_for: Callable[[str], str | None], env: dict[str, str],
                 role: JobRoleCredentials, max_parallel: int = 4) -> None:
        self.client, self.image_for, self.env, self.role = client, image_for, env, role
        self.label = {"mlbatch.stand-in": uuid.uuid4().hex[:12]}  # what stop() cleans up
        self._pool = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="aws-stand-in")
        self._released = threading.Event()
        self._released.set()
        self.started: list[str] = []  # job ids and task ARNs in the order their container started
        self.environments: list[list[str]] = []  # each container's environment as Docker started it

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def remove_containers(self) -> None:
        label = "=".join(next(iter(self.label.items())))
        for container in self.client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)

    def _container(self, job: ContainerJob, stopped: Callable[[], bool]) -> ContainerExit:
        return run(self.client, job, stopped, on_start=lambda c: self.environments.append(c.attrs["Config"]["Env"]))

    # moto calls this (as BatchSimpleBackend._mark_job_as_finished) for every job and array child
    def accept(self, backend: Any, include_start_attempt: bool, job: Any) -> None:
        backend.backend._jobs[job.job_id] = job
        if include_start_attempt:  # a plain job or an array child: it runs
            job.status = "RUNNABLE"
            self._pool.submit(self._run_guarded, job)
        else:  # an array parent: it ends when its children have
            job.status = "PENDING"
            threading.Thread(target=self._follow_children, args=(job,), daemon=True).start()

    def _run_guarded(self, job: Any) -> None:
        try:
            self._run(job)
        except Exception as exc:  # noqa: BLE001 - a stand-in bug must show as a failed job, not a hang
            job.job_stopped_reason = f"stand-in error: {exc!r}"
            job._mark_stopped(success=False)

    def _run(self, job: Any) -> None:
        while not self._released.wait(0.05):
            if job.stop:
                break
        if job.stop:  # terminated while queued: never started
            job._mark_stopped(success=False)
            return
        props, override = job.job_definition.container_properties, job.container_overrides
        image = self.image_for(props["image"])
        if image is None:
            job.job_stopped_reason = job.stand_in_reason = _pull_failure(props["image"])
            job._mark_stopped(success=False)
            return
        job.job_started_at = datetime.now()
        job.log_stream_name = job._stream_name
        job._start_attempt()
        job.status = "RUNNING"
        self.started.append(job.job_id)
        env = {**self.env, **_pairs(props.get("environment")), **_pairs(override.get("environment")),
               "AWS_BATCH_JOB_ID": job.job_id, **self.role.environment()}
        if "index" in job.array_properties:
            env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(job.array_properties["index"])
        resources = {r["type"]: r["value"] for r in [*props.get("resourceRequirements", []),
                                                     *override.get("resourceRequirements", [])]}
        entrypoint, command = argv_of(props, override)
        ended = self._container(ContainerJob(
            image, command, entrypoint, env, vcpu=float(resources.get("VCPU", 1)),
            memory_mib=int(resources.get("MEMORY", 2048)), labels={**self.label, "mlbatch.batch-job": job.job_id}),
            lambda: job.stop)
        self._ship_logs(job, ended.lines)
        job.exit_code = 137 if ended.killed else ended.exit_code
        if ended.oom_killed:
            job.stand_in_reason = job.job_stopped_reason = OOM_REASON
        elif job.exit_code != 0 and not job.job_stopped_reason:
            job.job_stopped_reason = EXITED_REASON
        job._mark_stopped(success=job.exit_code == 0)

    @staticmethod
    def _ship_logs(job: Any, lines: list[str]) -> None:
        logs = job._log_backend
        logs.ensure_log_group(job._log_group)
        logs.ensure_log_stream(job._log_group, job.log_stream_name)
        now = int(time.time() * 1000)
        if lines:
            logs.put_log_events(job._log_group, job.log_stream_name,
                                [{"timestamp": now, "message": line or " "} for line in lines])

    # moto calls this after its own RunTask created the (Fargate) tasks
    def accept_tasks(self, backend: Any, tasks: list[Any]) -> None:
        for task in tasks:
            task.last_status = "PENDING"
            task.containers[0].last_status = "PENDING"
            self._pool.submit(self._run_task_guarded, backend, task)

    def _run_task_guarded(self, backend: Any, task: Any) -> None:
        try:
            self._run_task(backend, task)
        except Exception as exc:  # noqa: BLE001 - a stand-in bug must show as a stopped task, not a hang
            task.stopped_reason = f"stand-in error: {exc!r}"
            task.last_status = "STOPPED"

    def _run_task(self, backend: Any, task: Any) -> None:
        while not self._released.wait(0.05):
            if task.desired_status == "STOPPED":
                return  # StopTask while provisioning: moto marked it STOPPED
        if task.desired_status == "STOPPED":
            return
        definition = backend.describe_task_definition(task.task_definition_arn)
        container_def = definition.container_definitions[0]
        override = (task.overrides.get("containerOverrides") or [{}])[0]
        container = task.containers[0]
        image = self.image_for(container_def["image"])
        if image is None:
            self._stop_task(task, None, "TaskFailedToStart", _pull_failure(container_def["image"]))
            container.reason = task.stopped_reason
            return
        task.last_status = container.last_status = "RUNNING"
        task.started_at = datetime.now()
        self.started.append(task.task_arn)
        env = {**self.env, **_pairs(container_def.get("environment")), **_pairs(override.get("environment")),
               **self.role.environment()}
        entrypoint, command = argv_of(container_def, override)
        cpu = task.overrides.get("cpu") or definition.cpu
        memory = task.overrides.get("memory") or definition.memory
        ended = self._container(ContainerJob(
            image, command, entrypoint, env, vcpu=int(cpu) / 1024, memory_mib=int(memory),
            labels={**self.label, "mlbatch.ecs-task": task.id}), lambda: task.desired_status == "STOPPED")
        options = (container_def.get("logConfiguration") or {}).get("options") or {}
        group = options.get("awslogs-group", "/ecs/mlbatch")
        stream = f"{options.get('awslogs-stream-prefix', 'ecs')}/{container_def['name']}/{task.id}"
        logs = logs_backends[backend.account_id][backend.region_name]
        logs.ensure_log_group(group)
        logs.ensure_log_stream(group, stream)
        if ended.lines:
            now = int(time.time() * 1000)
            logs.put_log_events(group, stream, [{"timestamp": now, "message": line or " "} for line in ended.lines])
        if ended.oom_killed:
            container.reason = OOM_REASON
        if ended.killed:  # StopTask: moto has set its stop code and reason
            self._stop_task(task, 137, getattr(task, "stop_code", None) or "UserInitiated", task.stopped_reason)
        else:
            self._stop_task(task, ended.exit_code, "EssentialContainerExited", EXITED_REASON)

    @staticmethod
    def _stop_task(task: Any, exit_code: int | None, stop_code: str | None, reason: str | None) -> None:
        container = task.containers[0]
        container.exitCode = exit_code
        container.last_status = "STOPPED"
        task.stopped_at = datetime.now()
        task.stop_code, task.stopped_reason = stop_code, reason
        task.desired_status = task.last_status = "STOPPED"

    @staticmethod
    def _follow_children(job: Any) -> None:
        while job._child_jobs is None:
            time.sleep(0.02)
        children = job._child_jobs
        while not all(child.job_stopped for child in children):
            if job.stop:
                for child in children:
                    child.terminate(job.job_stopped_reason or "parent terminated")
            if any(child.status == "RUNNING" for child in children):
                job.status = "RUNNING"
            time.sleep(0.05)
        job._mark_stopped(success=all(child.status == "SUCCEEDED" for child in children))


class AwsStandIn:
    """moto_server with Batch queues, a compute environment, S3 and logs, and ContainerJobRunner.

    `worker_image` is the local tag every job of the deployment's image (REPOSITORY) runs; `images`, the
    local tag of any other image reference a definition may name (a team's image in its own repository)."""

    def __init__(self, client: Any, worker_image: str) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.worker_image = worker_image
        self.images: dict[str, str] = {}
        self.role = JobRoleCredentials()
        self.runner = ContainerJobRunner(client, self.image_for, self.worker_env(), self.role)
        self._server: Any = None

    def image_for(self, image: str) -> str | None:
        """The local image a definition's image runs as: every variant of the deployment's repository is the CPU
        worker image built here (there is no GPU); a reference in `images` is its local tag; anything else cannot
        be pulled."""
        if image in self.images:
            return self.images[image]
        return self.worker_image if image.startswith(f"{REPOSITORY}:") else None

    def worker_env(self) -> dict[str, str]:
        """What a Batch host or the ECS agent adds to every container: its region, here the endpoint (no key)."""
        return {"AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": self.endpoint}

    def airflow_env(self) -> dict[str, str]:
        """For an Airflow process: its AWS connection points at the stand-in."""
        conn = {"conn_type": "aws", "extra": {"endpoint_url": self.endpoint, "region_name": REGION}}
        return {**CREDENTIALS, "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": self.endpoint,
                "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(conn), "MLBATCH_ARTIFACTS": f"s3://{BUCKET}/artifacts"}

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint,
                            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def start(self) -> AwsStandIn:
        from moto.batch_simple.models import BatchSimpleBackend
        from moto.server import ThreadedMotoServer

        from moto.batch.models import Job

        runner = self.runner
        details = Job._container_details
        if not getattr(details, "stand_in", False):
            # Real DescribeJobs reports the container's exit code and reason; moto only the code, in ListJobs.
            def container_details(job: Any) -> dict[str, Any]:
                result = details(job)
                if job.exit_code is not None:
                    result["exitCode"] = job.exit_code
                if getattr(job, "stand_in_reason", None):
                    result["reason"] = job.stand_in_reason
                return result

            container_details.stand_in = True  # type: ignore[attr-defined]
            Job._container_details = container_details  # type: ignore[method-assign]
        from moto.ecs.models import EC2ContainerServiceBackend
        from moto.moto_api import state_manager

        from moto.ec2.models.elastic_network_interfaces import NetworkInterface

        if not hasattr(NetworkInterface, "private_dns_name"):  # moto 5.2.5's awsvpc RunTask reads it; ENIs lack it
            NetworkInterface.private_dns_name = property(  # type: ignore[attr-defined]
                lambda eni: f"ip-{eni.private_ip_address.replace('.', '-')}.ec2.internal")
        state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})  # only the runner moves
        run_task = getattr(EC2ContainerServiceBackend.run_task, "original", EC2ContainerServiceBackend.run_task)

        def run_and_start(backend: Any, *args: Any, **kwargs: Any) -> list[Any]:
            tasks = run_task(backend, *args, **kwargs)
            runner.accept_tasks(backend, tasks)
            return tasks

        run_and_start.original = run_task  # type: ignore[attr-defined]
        EC2ContainerServiceBackend.run_task = run_and_start  # type: ignore[method-assign]
        BatchSimpleBackend._mark_job_as_finished = (  # type: ignore[method-assign]
            lambda backend, include_start_attempt, job: runner.accept(backend, include_start_attempt, job))
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self.role.start()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        import urllib.request

        request = urllib.request.Request(f"{self.endpoint}/moto-api/config", method="POST",
                                         data=json.dumps({"batch": {"use_docker": False}}).encode())
        urllib.request.urlopen(request, timeout=10).read()
        # moto keeps its state per process: start from nothing, whichever module started one before
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"), timeout=10)
        urllib.request.urlopen(request, timeout=10).read()
        self._create_resources()
        return self

    def stop(self) -> None:
        self.runner.release()
        self.runner.remove_containers()
        self.role.stop()
        if self._server is not None:
            self._server.stop()

    def _create_resources(self) -> None:
        iam, ec2, batch = self.client("iam"), self.client("ec2"), self.client("batch")
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                                    "Principal": {"Service": "batch.amazonaws.com"}}]})
        role = iam.create_role(RoleName="mlbatch-batch-service", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        self.job_role = iam.create_role(RoleName="mlbatch-job", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="mlbatch", Description="mlbatch workers", VpcId=vpc)["GroupId"]
        profile = iam.create_instance_profile(InstanceProfileName="mlbatch-ecs-instance")["InstanceProfile"]["Arn"]
        environments = {}
        for kind in ("cpu", "gpu"):
            environments[kind] = batch.create_compute_environment(
                computeEnvironmentName=f"mlbatch-{kind}", type="MANAGED", state="ENABLED", serviceRole=role,
                computeResources={"type": "EC2", "minvCpus": 0, "maxvCpus": 64, "instanceTypes": ["optimal"],
                                  "subnets": [subnet], "securityGroupIds": [group], "instanceRole": profile},
            )["computeEnvironmentArn"]
        for queue_role, name in QUEUES.items():
            batch.create_job_queue(jobQueueName=name, state="ENABLED", priority=1, computeEnvironmentOrder=[
                {"order": 1, "computeEnvironment": environments[queue_role.split("-")[0]]}])
        self.client("s3").create_bucket(Bucket=BUCKET)
        self.client("logs").create_log_group(logGroupName="/aws/batch/job")
        self.client("ecs").create_cluster(clusterName="mlbatch", capacityProviders=["FARGATE", "FARGATE_SPOT"])
        self.subnet, self.security_group = subnet, group

    def settings_text(self) -> str:
        queues = "\n".join(f'{role} = "{name}"' for role, name in QUEUES.items())
        return (f'[aws]\nconn_id = "aws_default"\nregion = "{REGION}"\njob_role_arn = "{self.job_role}"\n\n'
                f'[image]\nrepository = "{REPOSITORY}"\ntag = "test"\n\n'
                f'[ecs]\ncluster = "mlbatch"\nsubnets = ["{self.subnet}"]\nsecurity_groups = ["{self.security_group}"]\n'
                f'poll_interval = "0.3s"\n\n'
                f'[batch]\npoll_interval = "0.3s"\n\n[batch.queues]\n{queues}\n')
