"""The user's profile: the time zone their days are read in and the blood-pressure guideline they are classified by.

Writes go one way, as every other input does: PUT publishes the profile on the compacted profile topic (keyed by
user) and answers 202; the stream worker applies it and stores it in user_profiles, which GET (and the results
routes) read. Until the worker has applied one, the defaults hold: UTC and the deployment's guideline.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.access import SharedRoutes, SubjectDep
from api.deps import CurrentUser, EngineDep, PublisherDep, SettingsDep
from api.errors import ApiError, ErrorResponse
from api.publisher import PublishError
from api.zones import DEFAULT_ZONE, check_zone
from schemas.derived import BpGuideline, UserProfile
from storage.profiles import get_profile

routes = SharedRoutes("profile")
routers = routes.routers

#: Longest IANA zone name is 32 characters; anything much longer is not one.
MAX_ZONE_CHARS = 64


class ProfileIn(BaseModel):
    """The whole profile (PUT replaces it): both fields are required, bp_guideline may be null."""

    model_config = ConfigDict(extra="forbid")

    time_zone: str = Field(min_length=1, max_length=MAX_ZONE_CHARS,
                           description="IANA zone name, e.g. Europe/Berlin; days and times of day are read in it.")
    bp_guideline: BpGuideline | None = Field(
        description="Blood-pressure classification table; null: the deployment's (VITALSTREAM_BP_GUIDELINE).")


class ProfileOut(BaseModel):
    user_id: str
    time_zone: str
    bp_guideline: BpGuideline | None = Field(description="As chosen; null: the deployment's default applies.")
    effective_bp_guideline: BpGuideline = Field(description="The guideline results are classified by.")
    updated_at: datetime | None = Field(description="When the profile was set; null for the defaults.")
    applied: bool = Field(description="Whether the stream worker has applied this profile, so results use it. "
                                      "False for the defaults (no profile stored) and for a profile just sent.")


@routes.get("/profile", summary="Time zone and blood-pressure guideline the results use (the defaults, with "
                                "applied=false, until the stream worker has applied a profile)")
def read_profile(subject: SubjectDep, engine: EngineDep, settings: SettingsDep) -> ProfileOut:
    deployment = BpGuideline(settings.bp_guideline)
    with engine.connect() as connection:
        stored = get_profile(connection, subject.user_id)
    if stored is None:
        return ProfileOut(user_id=subject.user_id, time_zone=DEFAULT_ZONE, bp_guideline=None,
                          effective_bp_guideline=deployment, updated_at=None, applied=False)
    return ProfileOut(user_id=subject.user_id, time_zone=stored.time_zone, bp_guideline=stored.bp_guideline,
                      effective_bp_guideline=stored.bp_guideline or deployment, updated_at=stored.updated_at,
                      applied=True)


@routes.me.put("/profile", status_code=202, summary="Set your time zone and blood-pressure guideline (applied "
                                                    "by the stream worker shortly after; GET shows when)",
               responses={401: {"model": ErrorResponse, "description": "No valid bearer token"},
                          503: {"model": ErrorResponse, "description": "Kafka did not acknowledge the profile"}})
async def write_profile(body: ProfileIn, caller: CurrentUser, publisher: PublisherDep,
                        settings: SettingsDep) -> ProfileOut:
    check_zone(body.time_zone, field="time_zone")
    profile = UserProfile(user_id=caller.user_id, time_zone=body.time_zone, bp_guideline=body.bp_guideline,
                          updated_at=datetime.now(UTC))
    try:
        # The publisher blocks until Kafka acknowledges; keep the event loop free meanwhile.
        await run_in_threadpool(publisher.publish_profile, profile)
    except PublishError as error:
        raise ApiError(503, "kafka_unavailable", f"the profile was not accepted: {error}; send it again",
                       headers={"Retry-After": "5"}) from error
    return ProfileOut(user_id=profile.user_id, time_zone=profile.time_zone, bp_guideline=profile.bp_guideline,
                      effective_bp_guideline=profile.bp_guideline or BpGuideline(settings.bp_guideline),
                      updated_at=profile.updated_at, applied=False)
