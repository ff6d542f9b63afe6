"""Clinician grants: a user lets a clinician (by e-mail) see their data, and takes it back."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, EmailStr

from api.deps import CurrentUser, EngineDep
from api.errors import ErrorResponse, invalid, not_found
from storage import accounts
from storage.accounts import Role

router = APIRouter(prefix="/v1/me/grants", tags=["me"])


class GrantIn(BaseModel):
    clinician_email: EmailStr


class GrantPublic(BaseModel):
    clinician_email: str
    granted_at: datetime


@router.get("", summary="Clinicians who can see your data")
def list_grants(caller: CurrentUser, engine: EngineDep) -> list[GrantPublic]:
    with engine.connect() as connection:
        return [GrantPublic(clinician_email=g.clinician_email, granted_at=g.granted_at)
                for g in accounts.list_grants(connection, caller.user_id)]


@router.post("", status_code=201, summary="Let a clinician see your data (granting again changes nothing)",
             responses={404: {"model": ErrorResponse, "description": "No clinician has this e-mail address"}})
def grant(body: GrantIn, caller: CurrentUser, engine: EngineDep) -> GrantPublic:
    with engine.begin() as connection:
        clinician = accounts.user_by_email(connection, body.clinician_email)
        if clinician is None or clinician.role is not Role.CLINICIAN:
            raise not_found(f"no clinician account has the address {body.clinician_email}")
        if clinician.id == caller.user_id:
            raise invalid("clinician_email", "not_yourself", "you cannot grant access to yourself")
        granted_at = accounts.add_grant(connection, caller.user_id, clinician.id, datetime.now(UTC))
    return GrantPublic(clinician_email=clinician.email, granted_at=granted_at)


@router.delete("", status_code=204, summary="Take a clinician's access away",
               responses={404: {"model": ErrorResponse, "description": "That clinician has no access"}})
def revoke_grant(body: GrantIn, caller: CurrentUser, engine: EngineDep) -> Response:
    with engine.begin() as connection:
        clinician = accounts.user_by_email(connection, body.clinician_email)
        removed = clinician is not None and accounts.remove_grant(connection, caller.user_id, clinician.id)
    if not removed:
        raise not_found(f"{body.clinician_email} has no access to your data")
    return Response(status_code=204)
