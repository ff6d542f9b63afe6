"""Accounts and sessions: register, sign in (OAuth2 password flow), refresh, who am I."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, EmailStr, Field, SecretStr

from api.deps import CurrentUser, EngineDep, IssuerDep
from api.errors import ApiError, ErrorResponse, invalid, not_found, unauthorized
from api.security import (
    InvalidTokenError,
    TokenIssuer,
    TokenKind,
    hash_password,
    verify_decoy,
    verify_password,
)
from storage import accounts
from storage.accounts import DuplicateEmailError, Role, User

router = APIRouter(prefix="/v1", tags=["auth"])

MIN_PASSWORD_CHARS = 10
#: Long enough for any passphrase; short enough that hashing it is no denial-of-service lever.
MAX_PASSWORD_CHARS = 1024


class RegisterIn(BaseModel):
    email: EmailStr
    password: SecretStr = Field(min_length=MIN_PASSWORD_CHARS, max_length=MAX_PASSWORD_CHARS,
                                description=f"At least {MIN_PASSWORD_CHARS} characters.")
    role: Literal[Role.USER, Role.CLINICIAN] = Field(
        default=Role.USER, description="'clinician' can be granted access by patients; it sees nothing by itself.")


class UserPublic(BaseModel):
    id: str
    email: str
    role: Role
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserPublic:
        return cls(id=user.id, email=user.email, role=user.role, created_at=user.created_at)


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")


_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or invalid credentials"}}


def _issue_pair(engine: EngineDep, issuer: TokenIssuer, user: User, now: datetime) -> TokenPair:
    access, _ = issuer.issue(user.id, user.role, TokenKind.ACCESS, now)
    refresh, claims = issuer.issue(user.id, user.role, TokenKind.REFRESH, now)
    with engine.begin() as connection:
        accounts.store_refresh_token(connection, claims.jti, user.id, claims.issued_at, claims.expires_at)
    return TokenPair(access_token=access, refresh_token=refresh, expires_in=int(issuer.access_ttl.total_seconds()))


@router.post("/auth/register", status_code=201, summary="Create an account",
             responses={409: {"model": ErrorResponse, "description": "The e-mail address is taken"}})
def register(body: RegisterIn, engine: EngineDep) -> UserPublic:
    password = body.password.get_secret_value()
    if password.strip().lower() == body.email.lower():
        raise invalid("password", "not_email", "must not be the e-mail address")
    password_hash = hash_password(password)
    try:
        with engine.begin() as connection:
            user = accounts.create_user(connection, body.email, password_hash, Role(body.role), datetime.now(UTC))
    except DuplicateEmailError as error:
        raise ApiError(409, "email_taken", "an account with this e-mail address exists already") from error
    return UserPublic.of(user)


@router.post("/auth/token", summary="Sign in (OAuth2 password flow: form fields username = e-mail, password)",
             responses=_UNAUTHORIZED)
def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], engine: EngineDep,
          issuer: IssuerDep) -> TokenPair:
    with engine.connect() as connection:
        user = accounts.user_by_email(connection, form.username)
    if user is None:
        verify_decoy(form.password)
        raise unauthorized("wrong e-mail address or password")
    matches, new_hash = verify_password(user.password_hash, form.password)
    if not matches:
        raise unauthorized("wrong e-mail address or password")
    if new_hash is not None:
        with engine.begin() as connection:
            accounts.set_password_hash(connection, user.id, new_hash)
    return _issue_pair(engine, issuer, user, datetime.now(UTC))


@router.post("/auth/refresh", summary="Swap a refresh token for a new pair (each refresh token works once)",
             responses=_UNAUTHORIZED)
def refresh(body: RefreshIn, engine: EngineDep, issuer: IssuerDep) -> TokenPair:
    try:
        claims = issuer.verify(body.refresh_token, TokenKind.REFRESH)
    except InvalidTokenError as error:
        raise unauthorized(str(error)) from error
    now = datetime.now(UTC)
    with engine.begin() as connection:
        usable = accounts.use_refresh_token(connection, claims.jti, claims.user_id, now)
        user = accounts.user_by_id(connection, claims.user_id) if usable else None
    if user is None:
        raise unauthorized("the refresh token was used already, revoked or is unknown; sign in again")
    return _issue_pair(engine, issuer, user, now)


@router.get("/me", summary="The signed-in user", tags=["me"], responses=_UNAUTHORIZED)
def me(caller: CurrentUser, engine: EngineDep) -> UserPublic:
    with engine.connect() as connection:
        user = accounts.user_by_id(connection, caller.user_id)
    if user is None:
        raise not_found("this account no longer exists")
    return UserPublic.of(user)
