"""Password hashes, tokens, keys and Nightscout secret hashing."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from api.security import (
    InvalidTokenError,
    TokenIssuer,
    TokenKind,
    hash_password,
    new_api_key,
    new_nightscout_secret,
    nightscout_lookup_hash,
    token_issuer,
    verify_password,
)
from storage.accounts import Role
from vitalstream.config import Settings

NOW = datetime.now(UTC)


def issuer(secret: str = "unit-test-secret-0123456789abcdef0123") -> TokenIssuer:
    return TokenIssuer(secret, timedelta(minutes=15), timedelta(days=30))


def test_passwords_are_salted_argon2id_hashes() -> None:
    first, second = hash_password("a long passphrase"), hash_password("a long passphrase")
    assert first.startswith("$argon2id$") and first != second
    assert verify_password(first, "a long passphrase") == (True, None)
    assert verify_password(first, "a long passphrasE") == (False, None)
    assert verify_password("not a hash", "anything") == (False, None)


def test_a_token_round_trips_its_claims() -> None:
    token, claims = issuer().issue("user-1", Role.CLINICIAN, TokenKind.ACCESS, NOW)
    checked = issuer().verify(token, TokenKind.ACCESS)
    assert (checked.user_id, checked.role, checked.jti) == ("user-1", Role.CLINICIAN, claims.jti)
    assert checked.expires_at == (NOW + timedelta(minutes=15)).replace(microsecond=0)


@pytest.mark.parametrize(("token_of", "kind", "message"), [
    (lambda: issuer().issue("u", Role.USER, TokenKind.REFRESH, NOW)[0], TokenKind.ACCESS, "refresh token"),
    (lambda: issuer().issue("u", Role.USER, TokenKind.ACCESS, NOW - timedelta(hours=1))[0], TokenKind.ACCESS,
     "expired"),
    (lambda: issuer("other-secret-0123456789abcdef012345").issue("u", Role.ADMIN, TokenKind.ACCESS, NOW)[0],
     TokenKind.ACCESS, "not valid"),
    (lambda: "not.a.jwt", TokenKind.ACCESS, "not valid"),
])
def test_wrong_tokens_are_refused_saying_why(token_of: Callable[[], str], kind: TokenKind, message: str) -> None:
    with pytest.raises(InvalidTokenError, match=message):
        issuer().verify(token_of(), kind)


def test_without_a_configured_secret_a_random_one_is_used_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="api.security"):
        first, second = token_issuer(Settings(jwt_secret=None)), token_issuer(Settings(jwt_secret=None))
    assert "VITALSTREAM_JWT_SECRET is not set" in caplog.text
    token, _ = first.issue("u", Role.USER, TokenKind.ACCESS, NOW)
    with pytest.raises(InvalidTokenError):
        second.verify(token, TokenKind.ACCESS)  # each process signs with its own key


def test_keys_and_secrets_are_random_and_url_safe() -> None:
    keys = {new_api_key() for _ in range(100)}
    assert len(keys) == 100 and all(k.startswith("vsk_") and len(k) == 47 for k in keys)
    secret = new_nightscout_secret()
    assert len(secret) == 48 and set(secret) <= set("0123456789abcdef")


def test_the_nightscout_lookup_hash_accepts_the_sha1_or_the_secret_itself() -> None:
    secret = new_nightscout_secret()
    sha1 = hashlib.sha1(secret.encode()).hexdigest()
    stored = nightscout_lookup_hash(secret)
    assert nightscout_lookup_hash(sha1) == nightscout_lookup_hash(sha1.upper()) == stored
    assert stored == hashlib.sha256(sha1.encode()).hexdigest()  # never the SHA-1 itself
    assert nightscout_lookup_hash(secret + "x") != stored
