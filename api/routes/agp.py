"""Ambulatory glucose profile: percentiles of CGM glucose by local time of day, as numbers and as a chart.

The period is the `days` up to the newest CGM reading (not up to now), so a user whose sensor stopped still
gets the profile of the time they wore it. Percentiles are PostgreSQL's percentile_cont per time-of-day bin.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import IntEnum
from typing import Annotated

from fastapi import Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.access import SharedRoutes, Subject, SubjectDep
from api.agp_plot import AgpCurve, render_agp_png
from api.deps import EngineDep
from api.zones import ZoneDep
from storage.queries import AgpBin, agp_bins, newest_cgm_at

routes = SharedRoutes("results")
routers = routes.routers

MAX_DAYS = 90

DaysQuery = Annotated[int, Query(ge=1, le=MAX_DAYS, description="Days of CGM data, up to the newest reading.")]


class BinMinutes(IntEnum):
    """Bin widths that divide a day evenly."""

    FIVE = 5
    TEN = 10
    FIFTEEN = 15
    TWENTY = 20
    THIRTY = 30
    SIXTY = 60


BinQuery = Annotated[BinMinutes, Query(description="Width of a time-of-day bin, minutes.")]


class AgpBinOut(BaseModel):
    minute_of_day: int = Field(description="Start of the bin, minutes after local midnight.")
    time: str = Field(description="Start of the bin, HH:MM local.")
    readings: int
    p5_mg_dl: float
    p25_mg_dl: float
    p50_mg_dl: float
    p75_mg_dl: float
    p95_mg_dl: float


class Agp(BaseModel):
    time_zone: str
    days: int
    bin_minutes: int
    start: datetime | None = Field(description="Exclusive start of the period; null without CGM readings.")
    end: datetime | None = Field(description="The newest CGM reading (inclusive end).")
    readings: int
    bins: list[AgpBinOut] = Field(description="Bins with readings, in time-of-day order.")


def _agp(subject: Subject, engine: EngineDep, zone: str, days: int, bin_minutes: int) -> Agp:
    bins: list[AgpBin] = []
    start = None
    with engine.connect() as connection:
        end = newest_cgm_at(connection, subject.user_id)
        if end is not None:
            start = end - timedelta(days=days)
            bins = agp_bins(connection, subject.user_id, start, end, zone, bin_minutes)
    out = []
    for b in bins:
        minute = b.bin * bin_minutes
        p5, p25, p50, p75, p95 = b.percentiles_mg_dl
        out.append(AgpBinOut(minute_of_day=minute, time=f"{minute // 60:02d}:{minute % 60:02d}", readings=b.readings,
                             p5_mg_dl=p5, p25_mg_dl=p25, p50_mg_dl=p50, p75_mg_dl=p75, p95_mg_dl=p95))
    return Agp(time_zone=zone, days=days, bin_minutes=bin_minutes, start=start, end=end,
               readings=sum(b.readings for b in bins), bins=out)


@routes.get("/agp", summary="Ambulatory glucose profile: 5/25/50/75/95th percentiles by local time of day")
def agp(subject: SubjectDep, engine: EngineDep, zone: ZoneDep, days: DaysQuery = 14,
        bin_minutes: BinQuery = BinMinutes.FIFTEEN) -> Agp:
    return _agp(subject, engine, zone, days, bin_minutes)


@routes.get("/agp.png", summary="Ambulatory glucose profile chart (PNG): percentile bands, median, 70/180 targets",
            response_class=Response, responses={200: {"content": {"image/png": {}},
                                                      "description": "A 1000 × 500 px PNG"}})
def agp_png(subject: SubjectDep, engine: EngineDep, zone: ZoneDep, days: DaysQuery = 14,
            bin_minutes: BinQuery = BinMinutes.FIFTEEN) -> Response:
    profile = _agp(subject, engine, zone, days, bin_minutes)
    curve = AgpCurve(minutes=[b.minute_of_day for b in profile.bins], p5=[b.p5_mg_dl for b in profile.bins],
                     p25=[b.p25_mg_dl for b in profile.bins], p50=[b.p50_mg_dl for b in profile.bins],
                     p75=[b.p75_mg_dl for b in profile.bins], p95=[b.p95_mg_dl for b in profile.bins])
    title = f"Ambulatory glucose profile, {days} days, {profile.readings} readings ({zone})"
    png = render_agp_png(curve, bin_minutes, title)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})
