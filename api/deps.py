"""Dependencies, each defined once as an Annotated alias: settings, resources opened in the lifespan, callers.

Three kinds of caller: a person with a bearer access token (`CurrentUser`), a device with an `X-API-Key`
(accepted, with tokens, by ingest: `IngestCaller`), and a Nightscout uploader with its secret (`NightscoutCaller`).
The user is always taken from the credential, never from the request body.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, APIKeyQuery, OAuth2PasswordBearer
from sqlalchemy import Engine

from api.acceptance import Intake
from api.errors import unauthorized
from api.publisher import Publisher
from api.security import InvalidTokenError, TokenIssuer, TokenKind, nightscout_lookup_hash, sha256_hex
from schemas.events import Source
from storage.accounts import Role, device_by_key_hash, user_by_nightscout_hash
from vitalstream.config import Settings, get_settings
from vitalstream.object_store import ObjectStore

SettingsDep = Annotated[Settings, Depends(get_settings)]


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _publisher(request: Request) -> Publisher:
    publisher: Publisher = request.app.state.publisher
    return publisher


def _object_store(request: Request) -> ObjectStore:
    store: ObjectStore = request.app.state.object_store
    return store


def _issuer(request: Request) -> TokenIssuer:
    issuer: TokenIssuer = request.app.state.issuer
    return issuer


EngineDep = Annotated[Engine, Depends(_engine)]
PublisherDep = Annotated[Publisher, Depends(_publisher)]
IssuerDep = Annotated[TokenIssuer, Depends(_issuer)]
ObjectStoreDep = Annotated[ObjectStore, Depends(_object_store)]


def _intake(engine: EngineDep, publisher: PublisherDep, settings: SettingsDep) -> Intake:
    return Intake(engine, publisher, timedelta(seconds=settings.idempotency_ttl_s))


IntakeDep = Annotated[Intake, Depends(_intake)]


class Via(StrEnum):
    TOKEN = "token"
    API_KEY = "api_key"
    NIGHTSCOUT = "nightscout"


@dataclass(frozen=True)
class Principal:
    """Who is calling. `device_id` is set when the credential is a device's API key."""

    user_id: str
    role: Role
    via: Via
    device_id: str | None = None

    @property
    def source(self) -> Source:
        """The events' `source` for this kind of credential."""
        return {Via.TOKEN: Source.APP, Via.API_KEY: Source.DEVICE, Via.NIGHTSCOUT: Source.NIGHTSCOUT}[self.via]


_bearer = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False,
                               description="An access token from POST /v1/auth/token.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="A device key from POST /v1/devices.")
_ns_secret_header = APIKeyHeader(name="api-secret", auto_error=False,
                                 description="SHA-1 (hex) of the secret from POST /v1/nightscout/secret.")
_ns_token_query = APIKeyQuery(name="token", auto_error=False,
                              description="The Nightscout secret itself (for clients that cannot set headers).")
_ns_secret_query = APIKeyQuery(name="secret", auto_error=False, description="SHA-1 (hex) of the Nightscout secret.")


def _from_token(token: str, issuer: TokenIssuer) -> Principal:
    try:
        claims = issuer.verify(token, TokenKind.ACCESS)
    except InvalidTokenError as error:
        raise unauthorized(str(error)) from error
    return Principal(user_id=claims.user_id, role=claims.role, via=Via.TOKEN)


def _current_user(token: Annotated[str | None, Depends(_bearer)], issuer: IssuerDep) -> Principal:
    if not token:
        raise unauthorized("sign in: send 'Authorization: Bearer <access token>' (POST /v1/auth/token)")
    return _from_token(token, issuer)


def _ingest_caller(token: Annotated[str | None, Depends(_bearer)], api_key: Annotated[str | None, Depends(_api_key)],
                   issuer: IssuerDep, engine: EngineDep) -> Principal:
    if token and api_key:
        raise unauthorized("send one credential: either a bearer token or an X-API-Key, not both")
    if token:
        return _from_token(token, issuer)
    if not api_key:
        raise unauthorized("send 'X-API-Key: <device key>' or 'Authorization: Bearer <access token>'",
                           scheme='Bearer, ApiKey realm="X-API-Key"')
    with engine.connect() as connection:
        found = device_by_key_hash(connection, sha256_hex(api_key))
    if found is None:
        raise unauthorized("the X-API-Key is unknown or revoked", scheme='ApiKey realm="X-API-Key"')
    device, role = found
    return Principal(user_id=device.user_id, role=role, via=Via.API_KEY, device_id=device.id)


def _nightscout_caller(engine: EngineDep, header: Annotated[str | None, Depends(_ns_secret_header)],
                       token: Annotated[str | None, Depends(_ns_token_query)],
                       secret: Annotated[str | None, Depends(_ns_secret_query)]) -> Principal:
    presented = header or token or secret
    if not presented:
        raise unauthorized("send 'api-secret: <SHA-1 hex of your Nightscout secret>' or '?token=<secret>'",
                           scheme='ApiKey realm="api-secret"')
    with engine.connect() as connection:
        user = user_by_nightscout_hash(connection, nightscout_lookup_hash(presented))
    if user is None:
        raise unauthorized("the Nightscout secret is wrong (create one with POST /v1/nightscout/secret)",
                           scheme='ApiKey realm="api-secret"')
    return Principal(user_id=user.id, role=user.role, via=Via.NIGHTSCOUT)


CurrentUser = Annotated[Principal, Depends(_current_user)]
IngestCaller = Annotated[Principal, Depends(_ingest_caller)]
NightscoutCaller = Annotated[Principal, Depends(_nightscout_caller)]
