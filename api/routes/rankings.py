"""Rankings: where a user stands among everyone with enough data ("top 12 %"). Definitions: storage.rankings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field

from api.access import SharedRoutes, SubjectDep
from api.deps import EngineDep
from api.errors import invalid
from storage.rankings import RANKABLE, Better, Distributions, RankedMetric, current_value

routes = SharedRoutes("rankings")
routers = routes.routers


def _distributions(request: Request) -> Distributions:
    distributions: Distributions = request.app.state.rankings
    return distributions


DistributionsDep = Annotated[Distributions, Depends(_distributions)]


class Ranking(BaseModel):
    metric: RankedMetric
    window: str
    better: Better = Field(description="Whether a higher or a lower value ranks better.")
    unit: str
    eligible: bool = Field(description="False: no value, or not enough data; the user is not in the population.")
    reason: str | None = Field(description="Why the user is not ranked (when eligible is false).")
    value: float | None
    percentile: float | None = Field(
        description="100 × share of the others doing worse: SQL percent_rank() over the population, × 100.")
    top_percent: float | None = Field(description="Share of the population doing at least as well, user included.")
    population: int = Field(description="Users with enough data for this metric and window (the user included).")
    as_of: datetime | None = Field(description="When the user's value was computed.")
    population_as_of: datetime = Field(description="When the population's snapshot was taken (at most about "
                                                   "a minute old).")


@routes.get("/rankings/{metric}", summary="Rank among all users with enough data: percentile and top %")
def ranking(metric: RankedMetric, subject: SubjectDep, engine: EngineDep, distributions: DistributionsDep,
            window: Annotated[str | None, Query(max_length=16, description=(
                "Window of the metric (14d or 24h for glucose, 7d for BP and exercise, latest for HbA1c); "
                "default: the metric's first."))] = None) -> Ranking:
    rankable = RANKABLE[metric]
    window = window or rankable.default_window
    stored = rankable.stored.get(window)
    if stored is None:
        raise invalid("query.window", "known_window",
                      f"{metric.value} is ranked over {', '.join(rankable.stored)}, not {window!r}")
    with engine.connect() as connection:
        own = current_value(connection, subject.user_id, stored)
    snapshot = distributions.get(stored)
    base = {"metric": metric, "window": window, "better": rankable.better, "unit": rankable.unit,
            "population_as_of": snapshot.loaded_at}
    if own is None or not own.sufficient:
        reason = (f"no {metric.value} value over {window} yet" if own is None else
                  f"not enough data for {metric.value} over {window} (e.g. too few readings in the window); "
                  "users without enough data are not ranked")
        return Ranking(**base, eligible=False, reason=reason, value=None if own is None else own.value,
                       percentile=None, top_percent=None, population=len(snapshot.values),
                       as_of=None if own is None else own.as_of)
    rank = snapshot.rank(own.value, rankable.better)
    return Ranking(**base, eligible=True, reason=None, value=own.value, percentile=rank.percentile,
                   top_percent=rank.top_percent, population=rank.population, as_of=own.as_of)
