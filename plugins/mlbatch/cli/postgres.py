"""A PostgreSQL cluster of its own for Airflow's metadata DB: `mlbatch up --postgres` and the stack tests.

Production Airflow runs on PostgreSQL (docker-compose.yaml does too); SQLite is the zero-setup
default. This starts the machine's own PostgreSQL server binaries (Debian's `postgresql`
package) on a data folder of ours, listening on 127.0.0.1 only, with a database `airflow`
owned by a role `airflow` that is not a superuser. Loopback is not a boundary (a step's code
runs on the same machine), so every login needs a password (scram-sha-256): both passwords
are generated at creation and kept in a 0600 file beside the data folder, where the next
`mlbatch up --postgres` finds them. A team's shared database is configured the usual way
(AIRFLOW__DATABASE__SQL_ALCHEMY_CONN) instead.

PostgreSQL refuses to run as root: as root, its commands run as the `postgres` system user
(which the Debian package creates) and the data folder is handed to that user.
"""
from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

DATABASE = "airflow"
ROLE = "airflow"  # owns the database; no superuser, cannot create roles or databases
ADMIN = "mlbatch_admin"  # the cluster's superuser: only mlbatch itself logs in as it, to create the above


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server programs are not installed, or the cluster did not start."""


def server_bin_dir() -> Path:
    """The folder with initdb and pg_ctl: on PATH, else Debian's versioned folder."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if versions:
        return Path(versions[-1]).parent
    raise PostgresUnavailable("PostgreSQL's server is not installed: `apt-get install postgresql` (Debian/Ubuntu), "
                              "or leave out --postgres to run on SQLite")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LocalPostgres:
    """One cluster in `data_dir` on 127.0.0.1:`port`. `start()` creates it on first use."""

    data_dir: Path
    port: int

    @classmethod
    def throwaway(cls) -> LocalPostgres:
        """A cluster in a new folder of the system's temp dir, for tests. Not under a private (0700)
        folder such as pytest's: its server user must reach the data, and pytest resets the mode of
        its own folders whenever another session starts."""
        folder = Path(tempfile.mkdtemp(prefix="mlbatch-postgres-"))
        folder.chmod(0o711)
        return cls(folder / "data", free_port())

    def remove(self) -> None:
        """Stop it and delete its folder (a throwaway cluster's)."""
        self.stop()
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{ROLE}:{self.passwords()[ROLE]}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def passwords_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.passwords.json"

    def passwords(self) -> dict[str, str]:
        """{role: password} of this cluster, generated once (0600, readable by whoever runs mlbatch)."""
        if not self.passwords_file.exists():
            if (self.data_dir / "PG_VERSION").exists():
                raise PostgresUnavailable(
                    f"the cluster in {self.data_dir} was created without passwords (any local process could log "
                    f"in as its superuser): stop it, move the folder away and run again to create a new one, then "
                    f"`airflow db migrate` (the metadata DB starts empty)")
            self.passwords_file.parent.mkdir(parents=True, exist_ok=True)
            created = {ADMIN: secrets.token_urlsafe(32), ROLE: secrets.token_urlsafe(32)}
            descriptor = os.open(self.passwords_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                json.dump(created, file)
        return json.loads(self.passwords_file.read_text())

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def start(self) -> str:
        """Create the cluster if needed, start it, make sure the database exists; the SQLAlchemy URL."""
        self.passwords()  # refuses a cluster made without them
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._own(self.log_file, touch=True)
        if self.running():
            self._create_database()
            return self.url
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir} -c max_connections=200"
        started = self._as_owner([str(server_bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "-l",
                                  str(self.log_file), "-o", options, "-w", "-t", "60", "start"])
        if started.returncode != 0:
            raise PostgresUnavailable(f"PostgreSQL did not start (see {self.log_file}): {started.stderr.strip()}")
        self._create_database()
        return self.url

    def running(self) -> bool:
        status = self._as_owner([str(server_bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "status"])
        return status.returncode == 0

    def stop(self) -> None:
        if self.running():
            self._as_owner([str(server_bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"])

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._own(self.data_dir)
        if self._owner() is not None:
            _let_others_traverse(self.data_dir.parent)
        password_file = self.data_dir.parent / f".{self.data_dir.name}.initdb-password"
        descriptor = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(self.passwords()[ADMIN])
        self._own(password_file)
        try:
            made = self._as_owner([str(server_bin_dir() / "initdb"), "-D", str(self.data_dir), "-U", ADMIN,
                                   f"--pwfile={password_file}", "--auth=scram-sha-256", "-E", "UTF8", "--locale=C"])
        finally:
            password_file.unlink(missing_ok=True)
        if made.returncode != 0:
            raise PostgresUnavailable(f"initdb failed in {self.data_dir}: {made.stderr.strip()}")

    def _create_database(self) -> None:
        import psycopg2  # Airflow's own PostgreSQL driver (requirements.txt)

        passwords = self.passwords()
        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=ADMIN, password=passwords[ADMIN],
                                      dbname="postgres")
        connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,))
                verb = "ALTER" if cursor.fetchone() else "CREATE"
                cursor.execute(f"{verb} ROLE {ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                               "PASSWORD %s", (passwords[ROLE],))
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
                if cursor.fetchone() is None:
                    cursor.execute(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
                cursor.execute("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC")
        finally:
            connection.close()

    @staticmethod
    def _owner() -> pwd.struct_passwd | None:
        """The user PostgreSQL runs as: `postgres` when we are root, else ourselves (None)."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable("running as root needs the `postgres` system user "
                                      "(Debian's postgresql package creates it)") from None

    def _own(self, path: Path, touch: bool = False) -> None:
        if touch:
            path.touch(exist_ok=True)
        if (owner := self._owner()) is not None:
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def _as_owner(self, argv: list[str]) -> subprocess.CompletedProcess:
        owner = self._owner()
        # PostgreSQL's programs check who runs them, and cd into a folder that user may read
        kwargs = dict(user=owner.pw_uid, group=owner.pw_gid, extra_groups=[]) if owner else {}
        return subprocess.run(argv, capture_output=True, text=True, cwd="/", timeout=120, **kwargs)


def _let_others_traverse(folder: Path) -> None:
    """The server user must reach its data folder: private parents (a 0700 temp dir) get o+x, nothing more."""
    for parent in [folder, *folder.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)
