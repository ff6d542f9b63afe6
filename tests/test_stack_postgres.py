"""The local stack's PostgreSQL + TimescaleDB: a real server in a throwaway stack folder, on its own port."""

from __future__ import annotations

import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from stack.base import TrackedProcess, port_open, processes_mentioning
from stack.postgres import Postgres
from stack.timescaledb import PgLayout, control_version
from vitalstream.config import Settings

pytestmark = [pytest.mark.stack, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def stack_dir() -> Iterator[Path]:
    # Not tmp_path: pytest's base folder is private to root, and the server runs as the `postgres` user.
    path = Path(tempfile.mkdtemp(prefix="vitalstream-pg-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _started(stack_dir: Path) -> Postgres:
    pg = Postgres(Settings(stack_dir=stack_dir, postgres_port=_free_port(), postgres_db="vs_test"))
    pg.install()
    pg.start()
    pg.wait_ready()
    return pg


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    path = Path(tempfile.mkdtemp(prefix="vitalstream-pg-"))
    pg = _started(path)
    yield pg
    pg.stop()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def engine(postgres: Postgres) -> Iterator[Engine]:
    eng = create_engine(postgres.address())
    yield eng
    eng.dispose()


def test_address_is_the_configured_database(postgres: Postgres) -> None:
    port = postgres.settings.postgres_port
    assert postgres.address() == f"postgresql+psycopg://postgres@127.0.0.1:{port}/vs_test"


def test_timescaledb_extension_is_created_in_the_database(engine: Engine) -> None:
    with engine.connect() as conn:
        version = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")).scalar()
    assert version == control_version(PgLayout.detect().extension_dir / "timescaledb.control")


def test_timescaledb_is_the_apache_edition(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_setting('timescaledb.license')")).scalar() == "apache"


def test_create_hypertable_partitions_rows_into_chunks(engine: Engine) -> None:
    table = f"glucose_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {table} (ts timestamptz NOT NULL, glucose_mg_dl double precision)"))
        conn.execute(text(f"SELECT create_hypertable('{table}', 'ts', chunk_time_interval => interval '1 day')"))
        conn.execute(text(f"INSERT INTO {table} VALUES ('2025-01-01 08:00+00', 110), "
                          f"('2025-01-02 08:00+00', 142), ('2025-01-03 08:00+00', 97)"))
        chunks = conn.execute(text("SELECT count(*) FROM timescaledb_information.chunks "
                                   "WHERE hypertable_name = :t"), {"t": table}).scalar()
        daily = conn.execute(text(f"SELECT time_bucket('1 day', ts) AS day, avg(glucose_mg_dl) FROM {table} "
                                  "GROUP BY day ORDER BY day")).all()
        conn.execute(text(f"DROP TABLE {table}"))
    assert chunks == 3
    assert [round(v) for _, v in daily] == [110, 142, 97]


def test_server_settings_are_the_local_stack_ones(engine: Engine, postgres: Postgres) -> None:
    with engine.connect() as conn:
        shown = {name: conn.execute(text(f"SHOW {name}")).scalar()
                 for name in ("listen_addresses", "port", "fsync", "max_connections",
                              "timescaledb.telemetry_level", "unix_socket_directories")}
    assert shown == {"listen_addresses": "127.0.0.1", "port": str(postgres.settings.postgres_port),
                     "fsync": "off", "max_connections": "200", "timescaledb.telemetry_level": "off",
                     "unix_socket_directories": str(postgres.run_dir.resolve())}


def test_data_survives_stop_and_start_and_wipe_deletes_it(stack_dir: Path) -> None:
    pg = _started(stack_dir)
    try:
        eng = create_engine(pg.address())
        with eng.begin() as conn:
            conn.execute(text("CREATE TABLE kept (v int)"))
            conn.execute(text("INSERT INTO kept VALUES (7)"))
        eng.dispose()
        pg.stop()
        pg.start()
        pg.wait_ready()
        eng = create_engine(pg.address())
        with eng.connect() as conn:
            assert conn.execute(text("SELECT v FROM kept")).scalar() == 7
        eng.dispose()
        pg.stop()
        pg.wipe()
        assert not pg.data_dir.exists()
        pg.start()
        pg.wait_ready()
        eng = create_engine(pg.address())
        with eng.connect() as conn:
            assert conn.execute(text("SELECT to_regclass('kept')")).scalar() is None
        eng.dispose()
    finally:
        pg.stop()


def test_stop_leaves_no_process(stack_dir: Path) -> None:
    pg = _started(stack_dir)
    procs = pg.processes()
    assert len(procs) == 1
    server = procs[0]
    backends = [TrackedProcess.of(pid) for pid in _children(server.pid)]
    assert backends, "a running postmaster has background processes"

    pg.stop()

    assert not any(p.alive() for p in [server, *backends])
    assert not port_open(pg.settings.postgres_port)
    assert processes_mentioning([pg.run_dir]) == []
    assert not pg.running()


def _children(pid: int) -> list[int]:
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
            for c in (task / "children").read_text().split()]
