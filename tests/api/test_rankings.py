"""Rankings agree with SQL percent_rank() over the same rows (ties included, insufficient users left out)."""

from __future__ import annotations

import struct
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, text

from storage.rankings import RANKABLE, Better, Distribution, Distributions, unpack_float8s
from storage.tables import user_metrics_current
from tests.api.conftest import Account, AccountFactory
from tests.api.rows import Writer

#: The brief's bound: within a tenth of a percentage point of SQL's answer.
TOLERANCE_PP = 0.1
WORKER_METRIC_NAMES = {  # what streams/rows.py writes into user_metrics_current
    "time_in_range_14d_pct", "time_below_70_14d_pct", "time_below_54_14d_pct", "time_above_180_14d_pct",
    "time_above_250_14d_pct", "mean_glucose_14d_mg_dl", "gmi_14d_pct", "cv_14d_pct", "gri_14d",
    "hypo_level2_episodes_14d", "time_in_range_24h_pct", "mean_glucose_24h_mg_dl", "mean_systolic_7d_mmhg",
    "mean_diastolic_7d_mmhg", "weekly_exercise_minutes", "hba1c_pct", "risk_tier_rank"}


def _sql_percent_ranks(engine: Engine, metric: str, better: Better) -> dict[str, float]:
    order = "ASC" if better is Better.HIGHER else "DESC"
    with engine.connect() as connection:
        rows = connection.execute(text(
            f"SELECT user_id, 100 * percent_rank() OVER (ORDER BY value {order}) AS pct "
            "FROM user_metrics_current WHERE metric = :metric AND sufficient"), {"metric": metric})
        return {row.user_id: row.pct for row in rows}


@pytest.fixture
def synthetic(engine: Engine) -> Iterator[tuple[str, dict[str, float], set[str]]]:
    """4000 users of a metric of their own: values with many ties, 10 % without enough data."""
    metric = f"test_metric_{uuid.uuid4().hex[:10]}"
    rng = np.random.default_rng(11)
    values = np.round(rng.normal(65, 15, 4000), 0)  # whole numbers: hundreds of ties
    sufficient = rng.random(4000) >= 0.1
    now = datetime.now(UTC)
    by_user = {f"synthetic-{i}": float(v) for i, v in enumerate(values)}
    insufficient = {f"synthetic-{i}" for i, s in enumerate(sufficient) if not s}
    with engine.begin() as connection:
        connection.execute(user_metrics_current.insert(), [
            {"user_id": user, "metric": metric, "value": value, "sufficient": user not in insufficient, "as_of": now}
            for user, value in by_user.items()])
    yield metric, by_user, insufficient
    with engine.begin() as connection:
        connection.execute(delete(user_metrics_current).where(user_metrics_current.c.metric == metric))


@pytest.mark.parametrize("better", list(Better))
def test_snapshot_ranks_agree_with_sql_percent_rank(engine: Engine, synthetic: tuple[str, dict[str, float], set[str]],
                                                    better: Better) -> None:
    metric, values, insufficient = synthetic
    snapshot = Distributions(engine).get(metric)
    expected = _sql_percent_ranks(engine, metric, better)

    assert len(snapshot.values) == len(expected) == len(values) - len(insufficient)
    population = np.array([v for u, v in values.items() if u not in insufficient])
    worst = 0.0
    for user_id, value in values.items():
        if user_id in insufficient:
            continue
        rank = snapshot.rank(value, better)
        worst = max(worst, abs(rank.percentile - expected[user_id]))
        assert rank.population == len(expected)
        doing_as_well = np.count_nonzero(population >= value if better is Better.HIGHER else population <= value)
        assert rank.top_percent == pytest.approx(100 * doing_as_well / len(expected))
    assert worst <= TOLERANCE_PP  # in fact exact, up to float rounding
    assert worst < 1e-9


def test_rank_by_hand() -> None:
    snapshot = Distribution("m", np.array([1.0, 2.0, 2.0, 3.0]), datetime.now(UTC))
    assert snapshot.rank(2.0, Better.HIGHER).percentile == pytest.approx(100 / 3)  # one of three others is lower
    assert snapshot.rank(2.0, Better.HIGHER).top_percent == 75.0  # 2, 2, 3 do at least as well
    assert snapshot.rank(2.0, Better.LOWER).percentile == pytest.approx(100 / 3)
    assert snapshot.rank(3.0, Better.HIGHER).percentile == 100.0
    assert snapshot.rank(3.0, Better.LOWER).percentile == 0.0
    # A value not in the snapshot counts as one more user.
    newcomer = snapshot.rank(10.0, Better.HIGHER)
    assert (newcomer.percentile, newcomer.top_percent, newcomer.population) == (100.0, 20.0, 5)
    alone = Distribution("m", np.array([5.0]), datetime.now(UTC)).rank(5.0, Better.HIGHER)
    assert (alone.percentile, alone.top_percent, alone.population) == (0.0, 100.0, 1)  # as percent_rank: 0


def test_packed_values_are_big_endian_float8s() -> None:
    assert unpack_float8s(struct.pack(">3d", 1.5, -2.0, 70.25)).tolist() == [1.5, -2.0, 70.25]
    assert unpack_float8s(None).size == 0  # string_agg over no rows is NULL
    with pytest.raises(ValueError, match="multiple of 8"):
        unpack_float8s(b"\x00" * 9)


def test_snapshots_are_reused_until_stale_then_reloaded_in_the_background(
        engine: Engine, synthetic: tuple[str, dict[str, float], set[str]]) -> None:
    metric, _, _ = synthetic
    now = [0.0]
    distributions = Distributions(engine, max_age_s=60, clock=lambda: now[0])
    first = distributions.get(metric)
    with engine.begin() as connection:
        connection.execute(user_metrics_current.insert(), [{
            "user_id": "synthetic-late", "metric": metric, "value": 1.0, "sufficient": True,
            "as_of": datetime.now(UTC)}])
    now[0] = 59.0
    assert distributions.get(metric) is first  # fresh enough
    now[0] = 61.0
    assert distributions.get(metric) is first  # stale: answered from the old one while it reloads
    for thread in threading.enumerate():
        if thread.name == f"rankings-{metric}":
            thread.join(timeout=10)
    reloaded = distributions.get(metric)
    assert len(reloaded.values) == len(first.values) + 1


def test_the_registry_uses_the_workers_names() -> None:
    stored = {name for rankable in RANKABLE.values() for name in rankable.stored.values()}
    assert stored <= WORKER_METRIC_NAMES
    assert WORKER_METRIC_NAMES - stored == {"risk_tier_rank"}  # left out on purpose (storage.rankings)


def test_ranking_route_agrees_with_sql(client: TestClient, account_factory: AccountFactory, engine: Engine) -> None:
    accounts = [account_factory() for _ in range(4)]
    for account, value in zip(accounts, (55.0, 70.0, 70.0, 91.5), strict=True):
        Writer(engine, account.user_id).metric("time_in_range_14d_pct", value)
    client.app.state.rankings.refresh("time_in_range_14d_pct")  # type: ignore[attr-defined]
    expected = _sql_percent_ranks(engine, "time_in_range_14d_pct", Better.HIGHER)

    for account in accounts:
        body = client.get("/v1/me/rankings/time_in_range", headers=account.auth).json()
        assert body["eligible"] is True and body["reason"] is None
        assert (body["metric"], body["window"], body["better"], body["unit"]) == ("time_in_range", "14d", "higher", "%")
        assert body["population"] == len(expected)
        assert abs(body["percentile"] - expected[account.user_id]) <= TOLERANCE_PP
    a, b = (client.get("/v1/me/rankings/time_in_range", headers=x.auth).json() for x in accounts[1:3])
    assert a["percentile"] == b["percentile"] and a["top_percent"] == b["top_percent"]  # a tie ranks alike


def test_users_without_enough_data_are_told_and_not_ranked(client: TestClient, account: Account,
                                                           engine: Engine) -> None:
    none_yet = client.get("/v1/me/rankings/mean_systolic", headers=account.auth).json()
    assert none_yet["eligible"] is False and "no mean_systolic value over 7d yet" in none_yet["reason"]
    Writer(engine, account.user_id).metric("mean_systolic_7d_mmhg", 128.0, sufficient=False)
    body = client.get("/v1/me/rankings/mean_systolic", headers=account.auth).json()
    assert body["eligible"] is False and body["percentile"] is None and body["top_percent"] is None
    assert "not enough data" in body["reason"]
    assert body["value"] == 128.0 and body["better"] == "lower"


def test_ranking_windows_and_metrics_are_checked(client: TestClient, account: Account) -> None:
    wrong = client.get("/v1/me/rankings/gmi", params={"window": "24h"}, headers=account.auth)
    assert wrong.status_code == 422
    assert wrong.json()["error"]["fields"][0]["field"] == "query.window"
    assert "14d" in wrong.json()["error"]["message"]
    assert client.get("/v1/me/rankings/shoe_size", headers=account.auth).status_code == 422
    day = client.get("/v1/me/rankings/time_in_range", params={"window": "24h"}, headers=account.auth).json()
    assert day["window"] == "24h" and day["eligible"] is False
