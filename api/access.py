"""Whose data a request reads, and whether the caller may: object-level authorization for every results route.

Each results route is registered twice with the same handler (`SharedRoutes`): under /v1/me/… for the caller's
own data, and under /v1/users/{user_id}/… for a patient's. There the caller must be that user, a clinician the
patient granted access to, or an admin; anyone else gets the same 404 as for a user who does not exist, so the
answer reveals nothing about which accounts exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Request

from api.deps import CurrentUser, EngineDep, Principal
from api.errors import ErrorResponse, invalid, not_found
from storage.accounts import Role, has_grant, user_by_id

Handler = TypeVar("Handler", bound=Callable[..., Any])

#: As the events' user_id (schemas.events.IdStr): no control characters (PostgreSQL text holds no NUL), ≤ 128.
USER_ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
MAX_USER_ID_CHARS = 128
_USER_ID = re.compile(USER_ID_PATTERN)

SUBJECT_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No valid bearer token"},
    404: {"model": ErrorResponse, "description": "No such user whose data you may see (or nothing to show)"},
}


@dataclass(frozen=True)
class Subject:
    """The user whose data is read (`user_id`), and who asks."""

    user_id: str
    caller: Principal


def _patient_id(user_id: Annotated[str, Path(min_length=1, max_length=MAX_USER_ID_CHARS, pattern=USER_ID_PATTERN,
                                             description="The patient's user id.")]) -> str:
    # Declares the path parameter once for every /v1/users/{user_id}/… operation (OpenAPI and validation).
    return user_id


def may_read(caller: Principal, user_id: str, engine: EngineDep) -> bool:
    """Whether `caller` may read `user_id`'s data: their own; a clinician with the patient's grant; an admin."""
    if user_id == caller.user_id:
        return True
    with engine.connect() as connection:
        if caller.role is Role.ADMIN:
            return user_by_id(connection, user_id) is not None
        if caller.role is Role.CLINICIAN:
            return has_grant(connection, user_id, caller.user_id)
    return False


def _subject(request: Request, caller: CurrentUser, engine: EngineDep) -> Subject:
    requested: str | None = request.path_params.get("user_id")
    if requested is None:
        return Subject(caller.user_id, caller)
    # FastAPI runs this even when the path parameter failed validation; never send such an id to the database.
    if len(requested) > MAX_USER_ID_CHARS or not _USER_ID.fullmatch(requested):
        raise invalid("path.user_id", "user_id", f"a user id has 1 to {MAX_USER_ID_CHARS} characters, none of "
                                                 "them control characters")
    if not may_read(caller, requested, engine):
        raise not_found(f"no user {requested} whose data you may see")
    return Subject(requested, caller)


SubjectDep = Annotated[Subject, Depends(_subject)]


class SharedRoutes:
    """Two routers holding the same handlers: `me` (/v1/me) and `patients` (/v1/users/{user_id})."""

    def __init__(self, tag: str) -> None:
        self.me = APIRouter(prefix="/v1/me", tags=[tag])
        self.patients = APIRouter(prefix="/v1/users/{user_id}", tags=["patients"],
                                  dependencies=[Depends(_patient_id)])

    @property
    def routers(self) -> tuple[APIRouter, APIRouter]:
        return self.me, self.patients

    def get(self, path: str, *, summary: str, responses: dict[int | str, dict[str, Any]] | None = None,
            **options: Any) -> Callable[[Handler], Handler]:
        """Register a GET handler on both routers (the patients' summary names who may call it)."""
        merged = {**SUBJECT_RESPONSES, **(responses or {})}

        def register(handler: Handler) -> Handler:
            self.me.add_api_route(path, handler, methods=["GET"], summary=summary, responses=merged, **options)
            self.patients.add_api_route(
                path, handler, methods=["GET"], responses=merged,
                summary=f"{summary} — a patient's (clinician with their grant, or admin)", **options)
            return handler

        return register
