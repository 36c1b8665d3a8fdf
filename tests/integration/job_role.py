"""A job role's credentials served the way the ECS agent (and so AWS Batch) serves them to a container.

A real Batch job or ECS task gets no key in its environment: the agent sets
AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and answers that unguessable path on 169.254.170.2
with the role's temporary credentials, which every AWS SDK fetches by itself. Here the
endpoint is on 127.0.0.1 (the containers share the host's network), so the container gets
AWS_CONTAINER_CREDENTIALS_FULL_URI instead, a loopback form botocore and aiobotocore accept.
"""
from __future__ import annotations

import json
import secrets
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JobRoleCredentials:
    """Temporary credentials of one role, each job or task reading them at a path only it was given."""

    def __init__(self, role_arn: str = "arn:aws:iam::123456789012:role/mlbatch-job") -> None:
        self.role_arn = role_arn
        self.access_key_id = "ASIA" + secrets.token_hex(8).upper()
        self.secret_access_key = secrets.token_urlsafe(30)
        self.token = secrets.token_urlsafe(60)
        self._paths: set[str] = set()
        self.fetches = 0  # how many times a container asked: proof that the SDK inside used this route
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def secrets(self) -> tuple[str, str, str]:
        """What must never show in a job's definition, submission, environment or logs."""
        return self.access_key_id, self.secret_access_key, self.token

    def start(self) -> JobRoleCredentials:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def environment(self) -> dict[str, str]:
        """What the agent adds to one container's environment: where to fetch the role's credentials."""
        path = f"/v2/credentials/{secrets.token_hex(16)}"
        self._paths.add(path)
        return {"AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://127.0.0.1:{self._server.server_port}{path}"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        role = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path not in role._paths:
                    self.send_error(404)
                    return
                role.fetches += 1
                expiry = datetime.now(timezone.utc) + timedelta(hours=1)
                body = json.dumps({"AccessKeyId": role.access_key_id, "SecretAccessKey": role.secret_access_key,
                                   "Token": role.token, "RoleArn": role.role_arn,
                                   "Expiration": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:  # quiet: one line per fetch otherwise
                pass

        return Handler
