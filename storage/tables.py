"""TimescaleDB tables, as SQLAlchemy Core metadata shared by the stream workers and the API.

Raw readings are hypertables keyed by (user_id, occurred_at, event_id): TimescaleDB needs the time column in
every unique index, the user leads so per-user range scans use the key, and event_id makes a rewrite a no-op.
Derived tables hold absolute values and are written by upsert, never incremented.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

TS = DateTime(timezone=True)


def _envelope() -> list[Column[object]]:
    return [
        Column("user_id", Text, nullable=False),
        Column("occurred_at", TS, nullable=False),
        Column("event_id", Uuid, nullable=False),
        Column("device_id", Text, nullable=False),
        Column("source", String(16), nullable=False),
        Column("received_at", TS, nullable=False),
    ]


def _raw_key(name: str) -> PrimaryKeyConstraint:
    return PrimaryKeyConstraint("user_id", "occurred_at", "event_id", name=f"{name}_pkey")


glucose_readings = Table(
    "glucose_readings", metadata, *_envelope(),
    Column("glucose_mg_dl", Float, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("meal_context", String(16), nullable=False),
    Column("trend", String(24)),
    _raw_key("glucose_readings"),
)

blood_pressure_readings = Table(
    "blood_pressure_readings", metadata, *_envelope(),
    Column("systolic_mmhg", SmallInteger, nullable=False),
    Column("diastolic_mmhg", SmallInteger, nullable=False),
    Column("pulse_bpm", SmallInteger),
    Column("arm", String(8)),
    Column("position", String(16)),
    _raw_key("blood_pressure_readings"),
)

hba1c_results = Table(
    "hba1c_results", metadata, *_envelope(),
    Column("hba1c_pct", Float, nullable=False),
    _raw_key("hba1c_results"),
)

exercise_sessions = Table(
    "exercise_sessions", metadata, *_envelope(),
    Column("activity", String(16), nullable=False),
    Column("duration_min", Float, nullable=False),
    Column("energy_kcal", Float),
    Column("steps", Integer),
    Column("mean_heart_rate_bpm", SmallInteger),
    _raw_key("exercise_sessions"),
)

meals = Table(
    "meals", metadata, *_envelope(),
    Column("meal_slot", String(16), nullable=False),
    Column("energy_kcal", Float),
    Column("carbs_g", Float),
    Column("protein_g", Float),
    Column("fat_g", Float),
    Column("photo_object_key", Text),
    Column("photo_sha256", String(64)),
    Column("photo_content_type", String(16)),
    Column("photo_size_bytes", Integer),
    _raw_key("meals"),
)

#: Glucose metrics of a rolling window, one row per user, window and hour of event time (the newest wins).
glucose_metrics = Table(
    "glucose_metrics", metadata,
    Column("user_id", Text, nullable=False),
    Column("window", String(8), nullable=False),
    Column("as_of_hour", TS, nullable=False),
    Column("as_of", TS, nullable=False),
    Column("window_start", TS, nullable=False),
    Column("readings", Integer, nullable=False),
    Column("mean_mg_dl", Float),
    Column("sd_mg_dl", Float),
    Column("cv_pct", Float),
    Column("gmi_pct", Float),
    Column("tir_pct", Float),
    Column("tbr70_pct", Float),
    Column("tbr54_pct", Float),
    Column("tar180_pct", Float),
    Column("tar250_pct", Float),
    Column("lbgi", Float),
    Column("hbgi", Float),
    Column("gri", Float),
    Column("gri_zone", String(1)),
    Column("readings_present_pct", Float),
    Column("sufficient", Boolean, nullable=False),
    PrimaryKeyConstraint("user_id", "window", "as_of_hour", name="glucose_metrics_pkey"),
)

#: Risk-tier history: a row each time a user's tier or its reasons change.
risk_tiers = Table(
    "risk_tiers", metadata,
    Column("user_id", Text, nullable=False),
    Column("as_of", TS, nullable=False),
    Column("tier", String(8), nullable=False),
    Column("reasons", JSONB, nullable=False),
    Column("event_id", Uuid, nullable=False),
    PrimaryKeyConstraint("user_id", "as_of", name="risk_tiers_pkey"),
)

#: Per user and calendar day in the user's own time zone: absolute totals, upserted.
daily_totals = Table(
    "daily_totals", metadata,
    Column("user_id", Text, nullable=False),
    Column("day", Date, nullable=False),
    Column("time_zone", Text, nullable=False),
    Column("energy_kcal", Float, nullable=False),
    Column("carbs_g", Float, nullable=False),
    Column("protein_g", Float, nullable=False),
    Column("fat_g", Float, nullable=False),
    Column("meals", Integer, nullable=False),
    Column("exercise_min", Float, nullable=False),
    Column("exercise_kcal", Float, nullable=False),
    Column("steps", Integer, nullable=False),
    Column("glucose_readings", Integer, nullable=False),
    Column("bp_readings", Integer, nullable=False),
    Column("updated_at", TS, nullable=False),
    PrimaryKeyConstraint("user_id", "day", name="daily_totals_pkey"),
)

#: Each user's current value of every rankable metric; the API ranks users from it.
user_metrics_current = Table(
    "user_metrics_current", metadata,
    Column("user_id", Text, nullable=False),
    Column("metric", String(40), nullable=False),
    Column("value", Float, nullable=False),
    Column("sufficient", Boolean, nullable=False),
    Column("as_of", TS, nullable=False),
    PrimaryKeyConstraint("user_id", "metric", name="user_metrics_current_pkey"),
)
# Rankings read one metric's sufficient values in order.
Index("user_metrics_current_rank_idx", user_metrics_current.c.metric, user_metrics_current.c.sufficient,
      user_metrics_current.c.value)

#: Hypertables: table → time column. Derived tables keyed by user and time are hypertables too.
HYPERTABLES: dict[str, str] = {
    glucose_readings.name: "occurred_at",
    blood_pressure_readings.name: "occurred_at",
    hba1c_results.name: "occurred_at",
    exercise_sessions.name: "occurred_at",
    meals.name: "occurred_at",
    glucose_metrics.name: "as_of_hour",
    risk_tiers.name: "as_of",
}


# ---------------------------------------------------------------------------------------------------------------------
# Accounts (api/, migration 0003): users, credentials, grants and ingest bookkeeping. Plain tables, not hypertables.
# users.id is text (a UUID string) so it compares directly with the raw tables' user_id.
# ---------------------------------------------------------------------------------------------------------------------

users = Table(
    "users", metadata,
    Column("id", Text, primary_key=True),
    Column("email", Text, nullable=False, unique=True),  # stored lower-cased
    Column("password_hash", Text, nullable=False),  # argon2id, in its own PHC string format
    Column("role", String(16), nullable=False),
    Column("created_at", TS, nullable=False),
    CheckConstraint("role IN ('user', 'clinician', 'admin')", name="users_role_check"),
)

#: Refresh tokens by their JWT id: each is used once (rotation); a second use revokes the user's whole set.
refresh_tokens = Table(
    "refresh_tokens", metadata,
    Column("jti", Uuid, primary_key=True),
    Column("user_id", Text, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("issued_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("used_at", TS),
    Column("revoked_at", TS),
)

#: Device API keys: only the SHA-256 of the key is kept (the key is 32 random bytes, shown once).
device_keys = Table(
    "device_keys", metadata,
    Column("id", Text, primary_key=True),  # the events' device_id
    Column("user_id", Text, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("key_sha256", String(64), nullable=False, unique=True),
    Column("created_at", TS, nullable=False),
    Column("revoked_at", TS),
)

#: A patient (user_id) lets a clinician read their data.
clinician_grants = Table(
    "clinician_grants", metadata,
    Column("user_id", Text, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("clinician_id", Text, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("granted_at", TS, nullable=False),
    PrimaryKeyConstraint("user_id", "clinician_id", name="clinician_grants_pkey"),
)

#: One Nightscout API secret per user. Uploaders send SHA-1(secret) in hex; we keep SHA-256 of that hex string,
#: so a copy of this table does not hold the value uploaders authenticate with.
nightscout_secrets = Table(
    "nightscout_secrets", metadata,
    Column("user_id", Text, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("sha1_sha256", String(64), nullable=False, unique=True),
    Column("created_at", TS, nullable=False),
)

#: Idempotency-Key → the response first given, replayed for a resubmission until expires_at.
idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("user_id", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("request_sha256", String(64), nullable=False),
    Column("status_code", SmallInteger),
    Column("response", JSONB),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False, index=True),
    PrimaryKeyConstraint("user_id", "key", name="idempotency_keys_pkey"),
)

#: Client-chosen (and Nightscout-derived) event ids already published, so a resubmission publishes nothing.
accepted_events = Table(
    "accepted_events", metadata,
    Column("user_id", Text, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("accepted_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False, index=True),
    PrimaryKeyConstraint("user_id", "event_id", name="accepted_events_pkey"),
)
