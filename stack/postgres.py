"""PostgreSQL 15 + TimescaleDB (Apache-2 edition) for the local stack: a cluster of our own on 127.0.0.1.

The cluster lives in `<stack_dir>/run/postgres/data` and survives `down`/`up`; `wipe()` deletes it.
It is a development/test cluster: durability is switched off for speed (fsync, synchronous_commit,
full_page_writes). Production runs the official TimescaleDB image with durable defaults.

PostgreSQL refuses to run as root, so when we are root the server runs as the `postgres` user, which then
must be able to enter every folder down to the run folder (checked, with a clear error).
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import signal
import stat
import time
from pathlib import Path
from typing import ClassVar

import psycopg
from psycopg import sql

from stack import timescaledb
from stack.apt import apt_install
from stack.base import Service, StackError, port_open
from stack.steps import run_step
from vitalstream.config import Settings

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"
_OS_USER = "postgres"
_CONF_NAME = "vitalstream.conf"
_UNIX_SOCKET_PATH_MAX = 107  # sun_path (108 bytes) minus the terminating NUL


class Postgres(Service):
    name = "postgres"
    env_var = "DATABASE_URL"
    startup_timeout_s: ClassVar[float] = 60.0

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.data_dir = self.run_dir / "data"
        #: Seconds per step of the last install/start, for reports.
        self.timings: dict[str, float] = {}

    # -- install -----------------------------------------------------------------------------
    def install(self) -> None:
        """PostgreSQL from apt if missing; TimescaleDB from the build cache, built once if there is none."""
        t0 = time.monotonic()
        self.timings["apt_server_s"] = apt_install(timescaledb.SERVER_PACKAGES, log=self._install_log)
        layout = timescaledb.PgLayout.detect()
        cached = timescaledb.find_cached(self._cache_dirs())
        if cached is None and layout.has_timescaledb():
            logger.info("timescaledb: using the copy already installed in %s", layout.pkglibdir)
        else:
            if cached is None:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                cached = timescaledb.build(self.cache_dir, layout, self._install_log)
            cached.install_into(layout)
        self.timings["install_s"] = time.monotonic() - t0

    def _cache_dirs(self) -> list[Path]:
        # The default stack's cache is shared, so a test's throwaway stack dir does not build again.
        default = Settings.model_fields["stack_dir"].get_default(call_default_factory=True)
        shared = Path(default) / "cache" / self.name
        return [self.cache_dir] if shared == self.cache_dir else [self.cache_dir, shared]

    @property
    def _install_log(self) -> Path:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        return self.cache_dir / "install.log"

    # -- run ---------------------------------------------------------------------------------
    def ports(self) -> dict[str, int]:
        return {"postgres_port": self.settings.postgres_port}

    def start(self) -> None:
        if self.running():
            return
        self.stop()  # forget pid files of a server that died
        for field, port in self.ports().items():
            if port_open(port):
                raise StackError(f"port {port} ({field}) is already in use; set VITALSTREAM_{field.upper()}")
        layout = timescaledb.PgLayout.detect()
        owner = _server_user()
        self._prepare_run_dir(owner)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(layout, owner)
        self._write_conf()
        self.spawn("postgres", _as_user(owner, [str(layout.bindir / "postgres"), "-D", str(self.data_dir)]),
                   env=_server_env(), cwd=self.run_dir)

    def ready(self) -> bool:
        try:
            with self._connect("postgres", timeout_s=1):
                return True
        except psycopg.OperationalError:
            return False

    def wait_ready(self) -> float:
        """Wait for connections, then make sure the database and its timescaledb extension exist."""
        waited = super().wait_ready()
        t0 = time.monotonic()
        self._create_database()
        self.timings["ready_s"] = waited
        self.timings["create_database_s"] = time.monotonic() - t0
        return waited + self.timings["create_database_s"]

    def stop(self, timeout_s: float = 20.0, sig: int = signal.SIGINT) -> None:
        """SIGINT is PostgreSQL's fast shutdown: sessions are ended, data is flushed."""
        super().stop(timeout_s, sig)

    def address(self) -> str:
        return self.settings.database

    def wipe(self) -> None:
        """Delete the cluster's data (the next start runs initdb again). The server must be stopped."""
        if self.running():
            raise StackError("postgres is running: stop it before wiping its data")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- helpers -----------------------------------------------------------------------------
    def _connect(self, dbname: str, timeout_s: float = 5) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(host="127.0.0.1", port=self.settings.postgres_port, user=SUPERUSER,
                               dbname=dbname, connect_timeout=max(1, round(timeout_s)), autocommit=True)

    def _create_database(self) -> None:
        db = self.settings.postgres_db
        with self._connect("postgres") as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
                logger.info("postgres: created database %s", db)
        with self._connect(db) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")

    def _prepare_run_dir(self, owner: pwd.struct_passwd | None) -> None:
        socket_path = self.run_dir / f".s.PGSQL.{self.settings.postgres_port}"
        if len(str(socket_path)) > _UNIX_SOCKET_PATH_MAX:
            raise StackError(f"the socket path {socket_path} is longer than {_UNIX_SOCKET_PATH_MAX} bytes: "
                             "choose a shorter VITALSTREAM_STACK_DIR (stack_dir)")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if owner is None:
            return
        stack_dir = self.settings.stack_dir.resolve()
        # Our own folders are opened for traversal; folders above the stack dir are the user's to decide.
        for folder in (stack_dir, stack_dir / "run"):
            folder.chmod(folder.stat().st_mode | stat.S_IXOTH)
        for folder in stack_dir.parents:
            if not _can_enter(folder, owner):
                raise StackError(
                    f"PostgreSQL runs as user {owner.pw_name}, who cannot enter {folder} "
                    f"(mode {stat.filemode(folder.stat().st_mode)}): put the stack somewhere it can reach "
                    f"(VITALSTREAM_STACK_DIR, now {stack_dir}) or `chmod o+x {folder}`")
        # The server writes its socket and lock file into the run folder.
        os.chown(self.run_dir, owner.pw_uid, owner.pw_gid)
        self.run_dir.chmod(0o755)

    def _initdb(self, layout: timescaledb.PgLayout, owner: pwd.struct_passwd | None) -> None:
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise StackError(f"{self.data_dir} holds files but no cluster (no PG_VERSION): remove it "
                             "(`vitalstream stack down --wipe`) and start again")
        cmd = [str(layout.bindir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "-A", "trust",
               "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"]
        self.timings["initdb_s"] = run_step(_as_user(owner, cmd), "initdb", log=self.log_file,
                                            env=_server_env(), cwd=self.run_dir)
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write(f"\n# Local-stack settings, rewritten at every start.\ninclude = '{_CONF_NAME}'\n")

    def _write_conf(self) -> None:
        socket_dir = str(self.run_dir.resolve()).replace("'", "''")
        (self.data_dir / _CONF_NAME).write_text(
            "# Written by the VitalStream local stack at every start: edits are lost.\n"
            "# A development/test cluster: durability is off for speed. Production runs the official\n"
            "# TimescaleDB image with durable defaults.\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.settings.postgres_port}\n"
            f"unix_socket_directories = '{socket_dir}'\n"
            "shared_preload_libraries = 'timescaledb'\n"
            "timescaledb.telemetry_level = off\n"
            "fsync = off\n"
            "synchronous_commit = off\n"
            "full_page_writes = off\n"
            "max_connections = 200\n")
        (self.data_dir / _CONF_NAME).chmod(0o644)


def _server_user() -> pwd.struct_passwd | None:
    """The user the server runs as when we are root (PostgreSQL refuses root); None: as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(_OS_USER)
    except KeyError:
        raise StackError(f"no `{_OS_USER}` user on this machine (the postgresql-{timescaledb.PG_MAJOR} "
                         "package creates it)") from None


def _as_user(owner: pwd.struct_passwd | None, cmd: list[str]) -> list[str]:
    if owner is None:
        return cmd
    # setpriv execs in place (runuser forks): the PID we record is the server's own.
    return ["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}", "--init-groups", "--", *cmd]


def _server_env() -> dict[str, str]:
    # PG* variables of the caller (PGDATA, PGPORT, …) must not steer our server or initdb.
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _can_enter(folder: Path, user: pwd.struct_passwd) -> bool:
    st = folder.stat()
    if st.st_uid == user.pw_uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in os.getgrouplist(user.pw_name, user.pw_gid):
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)
