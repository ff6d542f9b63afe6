"""accounts: users, refresh tokens, device keys, clinician grants, Nightscout secrets, idempotency bookkeeping

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _user_fk(name: str = "user_id", primary_key: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.Text, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False,
                     primary_key=primary_key)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("email", sa.Text, nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("role IN ('user', 'clinician', 'admin')", name="users_role_check"),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("jti", sa.Uuid, primary_key=True),
        _user_fk(),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS),
        sa.Column("revoked_at", TS),
    )
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"])
    op.create_table(
        "device_keys",
        sa.Column("id", sa.Text, primary_key=True),
        _user_fk(),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS),
    )
    op.create_index("ix_device_keys_user_id", "device_keys", ["user_id"])
    op.create_table(
        "clinician_grants",
        _user_fk(),
        _user_fk("clinician_id"),
        sa.Column("granted_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "clinician_id", name="clinician_grants_pkey"),
    )
    op.create_index("ix_clinician_grants_clinician_id", "clinician_grants", ["clinician_id"])
    op.create_table(
        "nightscout_secrets",
        _user_fk(primary_key=True),
        sa.Column("sha1_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("status_code", sa.SmallInteger),
        sa.Column("response", JSONB),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key", name="idempotency_keys_pkey"),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])
    op.create_table(
        "accepted_events",
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("accepted_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "event_id", name="accepted_events_pkey"),
    )
    op.create_index("ix_accepted_events_expires_at", "accepted_events", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_accepted_events_expires_at", table_name="accepted_events")
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    op.drop_index("ix_clinician_grants_clinician_id", table_name="clinician_grants")
    op.drop_index("ix_device_keys_user_id", table_name="device_keys")
    op.drop_index("ix_refresh_tokens_user_id", table_name="refresh_tokens")
    for table in ("accepted_events", "idempotency_keys", "nightscout_secrets", "clinician_grants", "device_keys",
                  "refresh_tokens", "users"):
        op.drop_table(table)
