"""Reviewers (users who sign in to the web pages) and API tokens: creating, checking, revoking.

Passwords are kept as scrypt hashes (memory-hard, from the standard library); API tokens are
long random secrets, so a SHA-256 of the token is enough to store: the token itself is shown
once, when it is created, and never again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from inkwell.models import ApiToken, User, utcnow

SCOPES = ("submit", "read", "review")
TOKEN_PREFIX = "ink_"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_PASSWORD_LENGTH = 10


class AccountError(ValueError):
    """A request about users or tokens that cannot be carried out (the message says why)."""


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    encode = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${encode(salt)}${encode(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), dklen=32, n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(candidate, base64.b64decode(digest))


# A fixed hash to check against when the user does not exist, so that a wrong username takes
# as long as a wrong password and sign-in timing does not reveal which usernames exist.
_DUMMY_HASH = hash_password(secrets.token_hex(8))


def create_user(session: Session, username: str, password: str) -> User:
    username = username.strip()
    if not username or len(username) > 64:
        raise AccountError("a username has 1 to 64 characters")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise AccountError(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), active=True)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or None (same work either way)."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    valid = verify_password(password, user.password_hash if user is not None else _DUMMY_HASH)
    if user is None or not valid or not user.active:
        return None
    user.last_login_at = utcnow()
    return user


def set_user_active(session: Session, username: str, active: bool) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise AccountError(f"no user {username!r}")
    user.active = active
    return user


@dataclass(frozen=True)
class NewToken:
    """A token just created: ``secret`` is shown once and is not stored."""

    token: ApiToken
    secret: str


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(session: Session, name: str, scopes: list[str], all_jobs: bool = False) -> NewToken:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise AccountError(f"scopes are one or more of {', '.join(SCOPES)}; not {', '.join(unknown) or 'none'}")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name.strip()[:100] or "token",
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        token_hash=_token_hash(secret),
        scopes=sorted(set(scopes)),
        all_jobs=all_jobs,
        webhook_secret=secrets.token_hex(32),
    )
    session.add(token)
    session.flush()
    return NewToken(token, secret)


def token_for_secret(session: Session, secret: str) -> ApiToken | None:
    """The live (not revoked) token with this secret, or None."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(secret)))
    if token is None or token.revoked_at is not None:
        return None
    return token


def revoke_token(session: Session, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise AccountError(f"no token with id {token_id}")
    token.revoked_at = token.revoked_at or utcnow()
    return token
