"""Credentials: password hashes (argon2id), access and refresh tokens (JWT, HS256), device keys, Nightscout secrets.

Passwords are low-entropy, so they get a slow, salted, memory-hard hash. Device keys and Nightscout secrets are
32 random bytes (24 for Nightscout), so a single SHA-256 is enough to make a stolen table useless, and lets the
key be found by its hash in one indexed lookup.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from uuid import UUID, uuid4

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from storage.accounts import Role
from vitalstream.config import Settings

log = logging.getLogger(__name__)

_hasher = PasswordHasher()  # argon2id with RFC 9106's low-memory profile (64 MiB, 3 passes)

API_KEY_PREFIX = "vsk_"  # lets secret scanners recognise a leaked key
ISSUER = "vitalstream"
JWT_ALGORITHM = "HS256"
#: Clock difference tolerated between API workers when checking exp/iat.
JWT_LEEWAY = timedelta(seconds=10)


# -- passwords -------------------------------------------------------------------------------------------------------
def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> tuple[bool, str | None]:
    """(matches, a fresh hash to store when the stored one uses outdated parameters)."""
    try:
        _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False, None
    return True, _hasher.hash(password) if _hasher.check_needs_rehash(password_hash) else None


@cache
def _decoy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def verify_decoy(password: str) -> None:
    """Spend the time a real check takes, so a login for an unknown address is not faster than a wrong password."""
    verify_password(_decoy_hash(), password)


# -- tokens ----------------------------------------------------------------------------------------------------------
class TokenKind(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


class InvalidTokenError(ValueError):
    """A token that is malformed, forged, expired, or of the wrong kind. The message says which."""


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    role: Role
    kind: TokenKind
    jti: UUID
    issued_at: datetime
    expires_at: datetime


class TokenIssuer:
    """Signs and checks our JWTs. Access tokens carry the role; refresh tokens are also recorded in the database."""

    def __init__(self, secret: str, access_ttl: timedelta, refresh_ttl: timedelta) -> None:
        self._secret = secret
        self._ttl = {TokenKind.ACCESS: access_ttl, TokenKind.REFRESH: refresh_ttl}

    @property
    def access_ttl(self) -> timedelta:
        return self._ttl[TokenKind.ACCESS]

    def issue(self, user_id: str, role: Role, kind: TokenKind, now: datetime) -> tuple[str, TokenClaims]:
        claims = TokenClaims(user_id=user_id, role=role, kind=kind, jti=uuid4(), issued_at=now,
                             expires_at=now + self._ttl[kind])
        token = jwt.encode({
            "iss": ISSUER, "sub": user_id, "role": role.value, "typ": kind.value, "jti": str(claims.jti),
            "iat": int(now.timestamp()), "exp": int(claims.expires_at.timestamp()),
        }, self._secret, algorithm=JWT_ALGORITHM)
        return token, claims

    def verify(self, token: str, kind: TokenKind) -> TokenClaims:
        try:
            payload = jwt.decode(token, self._secret, algorithms=[JWT_ALGORITHM], issuer=ISSUER, leeway=JWT_LEEWAY,
                                 options={"require": ["iss", "sub", "exp", "iat", "jti", "typ", "role"]})
        except jwt.ExpiredSignatureError as error:
            raise InvalidTokenError("the token has expired") from error
        except jwt.InvalidTokenError as error:
            raise InvalidTokenError(f"the token is not valid ({error})") from error
        if payload["typ"] != kind.value:
            raise InvalidTokenError(f"a {payload['typ']} token was given where a {kind.value} token is needed")
        try:
            return TokenClaims(user_id=str(payload["sub"]), role=Role(payload["role"]), kind=kind,
                               jti=UUID(payload["jti"]),
                               issued_at=datetime.fromtimestamp(payload["iat"], UTC),
                               expires_at=datetime.fromtimestamp(payload["exp"], UTC))
        except ValueError as error:
            raise InvalidTokenError(f"the token's claims are malformed ({error})") from error


def token_issuer(settings: Settings) -> TokenIssuer:
    """The issuer for these settings; without VITALSTREAM_JWT_SECRET, a random key that lives as long as the process."""
    if settings.jwt_secret is not None:
        secret = settings.jwt_secret.get_secret_value()
    else:
        secret = secrets.token_urlsafe(32)
        log.warning("VITALSTREAM_JWT_SECRET is not set: signing tokens with a random key for this process only; "
                    "tokens stop working on restart and are not shared between workers")
    return TokenIssuer(secret, timedelta(seconds=settings.access_token_ttl_s),
                       timedelta(seconds=settings.refresh_token_ttl_s))


# -- device keys and Nightscout secrets ------------------------------------------------------------------------------
def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_nightscout_secret() -> str:
    # Hex only: uploaders put the secret in a URL's user part (https://SECRET@host/api/v1), so no '-', '@' or ':'.
    return secrets.token_hex(24)


def nightscout_sha1(secret: str) -> str:
    """What uploaders send in the `api-secret` header: the SHA-1 of the secret, in lower-case hex."""
    return hashlib.sha1(secret.encode()).hexdigest()


def nightscout_lookup_hash(presented: str) -> str:
    """The stored form of a presented credential: SHA-256 of its SHA-1 hex (a raw secret is SHA-1'd first)."""
    presented = presented.strip()
    is_sha1_hex = len(presented) == 40 and all(c in "0123456789abcdefABCDEF" for c in presented)
    return sha256_hex(presented.lower() if is_sha1_hex else nightscout_sha1(presented))
