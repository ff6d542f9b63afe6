"""AGP: percentiles by local time of day agree with numpy on the same rows; the chart is a real PNG."""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine

from tests.api.conftest import Account
from tests.api.rows import Writer

BERLIN = ZoneInfo("Europe/Berlin")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def cgm(engine: Engine, account: Account) -> list[tuple[datetime, float]]:
    """16 days of 5-minute CGM readings across Berlin's spring-forward night (2026-03-29), with many ties."""
    rng = np.random.default_rng(7)
    start = datetime(2026, 3, 18, 0, 0, tzinfo=UTC)
    readings = [(start + timedelta(minutes=5 * i), float(rng.integers(40, 400)))
                for i in range(16 * 24 * 12)]
    Writer(engine, account.user_id).glucose(readings)
    # Fingerstick readings are not part of the profile.
    Writer(engine, account.user_id).glucose([(start + timedelta(days=15), 999.0)], kind="fingerstick")
    return readings


@pytest.mark.parametrize("bin_minutes", [15, 60])
def test_agp_percentiles_agree_with_numpy(client: TestClient, account: Account,
                                          cgm: list[tuple[datetime, float]], bin_minutes: int) -> None:
    response = client.get("/v1/me/agp", params={"days": 14, "bin_minutes": bin_minutes, "time_zone": "Europe/Berlin"},
                          headers=account.auth)
    assert response.status_code == 200, response.text
    body = response.json()

    end = max(at for at, _ in cgm)
    in_window = [(at, value) for at, value in cgm if end - timedelta(days=14) < at <= end]
    by_bin: dict[int, list[float]] = defaultdict(list)
    for at, value in in_window:
        local = at.astimezone(BERLIN)
        by_bin[(local.hour * 60 + local.minute) // bin_minutes].append(value)

    assert body["readings"] == len(in_window)
    assert datetime.fromisoformat(body["end"]) == end
    assert [b["minute_of_day"] for b in body["bins"]] == [k * bin_minutes for k in sorted(by_bin)]
    assert len(body["bins"]) == 24 * 60 // bin_minutes
    for got in body["bins"]:
        values = by_bin[got["minute_of_day"] // bin_minutes]
        expected = np.percentile(values, [5, 25, 50, 75, 95])
        assert got["readings"] == len(values)
        assert [got[f"p{p}_mg_dl"] for p in (5, 25, 50, 75, 95)] == pytest.approx(expected, abs=1e-9)
    assert body["bins"][1]["time"] == f"00:{bin_minutes:02d}" if bin_minutes < 60 else "01:00"


def test_agp_without_cgm_is_empty(client: TestClient, account: Account) -> None:
    body = client.get("/v1/me/agp", headers=account.auth).json()
    assert (body["readings"], body["bins"], body["start"], body["end"]) == (0, [], None, None)


def _png(client: TestClient, account: Account) -> Image.Image:
    response = client.get("/v1/me/agp.png", params={"time_zone": "Europe/Berlin"}, headers=account.auth)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def test_agp_png_is_a_chart(client: TestClient, account: Account, cgm: list[tuple[datetime, float]]) -> None:
    image = _png(client, account)
    assert image.format == "PNG" and image.size == (1000, 500)
    colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50  # bands, median, target lines, text: not a blank canvas
    # The 25-75 % band's blue covers a good part of the plot.
    band = sum(count for count, rgb in colours if isinstance(rgb, tuple) and rgb[2] > 150 and rgb[0] < 150)
    assert band > 0.05 * 1000 * 500


def test_agp_png_without_data_is_still_an_image(client: TestClient, account: Account) -> None:
    assert _png(client, account).size == (1000, 500)
