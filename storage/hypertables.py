"""TimescaleDB calls that migrations share, kept to what the Apache-2 edition supports."""

from __future__ import annotations

from alembic import op

CHUNK_INTERVAL = "7 days"


def create_hypertable(table: str, time_column: str, chunk_interval: str = CHUNK_INTERVAL) -> None:
    """Turn an empty table into a hypertable partitioned on `time_column`."""
    op.execute(
        f"SELECT create_hypertable('{table}', '{time_column}', "
        f"chunk_time_interval => INTERVAL '{chunk_interval}', if_not_exists => TRUE)"
    )
