"""Who is asking: a reviewer signed in to the web pages, or an API token.

Web pages need a signed-in reviewer (Flask-Login sessions that expire). The API takes a bearer
token (``Authorization: Bearer ink_...``) or, for the pages' own scripts, the signed-in session,
in which case writes must also carry the CSRF token. Answers follow HTTP: no or bad credentials
is 401 with ``WWW-Authenticate``; valid credentials without the needed scope is 403; a job the
caller may not see is 404, so its existence does not leak.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import Flask, Response, abort, g, request
from flask import session as flask_session
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy import update

from inkwell.accounts import SCOPES, token_for_secret
from inkwell.models import ApiToken, Job, User, utcnow
from webui.errors import api_error
from webui.state import database

login_manager = LoginManager()
login_manager.login_view = "views.sign_in"
login_manager.login_message = "Please sign in to continue."
login_manager.session_protection = "strong"


@dataclass(frozen=True)
class Reviewer(UserMixin):
    """The signed-in user as Flask-Login sees it (a plain copy: no database session attached)."""

    id: int
    username: str

    def get_id(self) -> str:
        return str(self.id)


SESSION_EPOCH_KEY = "session_epoch"


@login_manager.user_loader
def _load_reviewer(user_id: str) -> Reviewer | None:
    with database().session() as session:
        user = session.get(User, int(user_id)) if user_id.isdigit() and len(user_id) < 10 else None
        # A disabled user's existing session stops working at the next request, and so does a
        # session from before the user's last sign-out (its epoch is behind the user's).
        if user is None or not user.active or flask_session.get(SESSION_EPOCH_KEY) != user.session_epoch:
            return None
        return Reviewer(user.id, user.username)


def start_session(reviewer: Reviewer, epoch: int) -> None:
    """Sign ``reviewer`` in: a fresh session (no fixation) that lasts while it is used, bound to ``epoch``."""
    flask_session.clear()
    flask_session.permanent = True
    login_user(reviewer)
    flask_session[SESSION_EPOCH_KEY] = epoch


def end_sessions(reviewer_id: int) -> None:
    """Sign out: every session of this reviewer, this one and any copy of its cookie, stops working."""
    with database().session() as session:
        session.execute(update(User).where(User.id == reviewer_id).values(session_epoch=User.session_epoch + 1))
    logout_user()
    flask_session.clear()


@dataclass(frozen=True)
class Principal:
    """Whoever makes an API call: a reviewer (all scopes, all jobs) or a token."""

    kind: str  # "user" or "token"
    id: int
    name: str
    scopes: frozenset[str]
    all_jobs: bool

    @property
    def author(self) -> str:
        """How edits and reviews by this caller are signed."""
        return self.name if self.kind == "user" else f"token:{self.name}"

    def can_see(self, job: Job) -> bool:
        return self.all_jobs or (self.kind == "token" and job.token_id == self.id)


def _bearer_secret() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _unauthorized(message: str) -> Response:
    return api_error(401, "unauthorized", message, {"WWW-Authenticate": 'Bearer realm="inkwell"'})


def _resolve_principal() -> Principal | Response:
    secret = _bearer_secret()
    if secret is not None:
        with database().session() as session:
            token: ApiToken | None = token_for_secret(session, secret)
            if token is None:
                return _unauthorized("the API token is not valid (unknown or revoked)")
            token.last_used_at = utcnow()
            return Principal("token", token.id, token.name, frozenset(token.scopes), token.all_jobs)
    if request.headers.get("Authorization"):
        return _unauthorized("use 'Authorization: Bearer <token>'")
    if current_user.is_authenticated:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            try:
                validate_csrf(request.headers.get("X-CSRFToken", ""))
            except CSRFError as error:
                return api_error(400, "csrf_failed", error.description)
            except Exception:  # noqa: BLE001 - validate_csrf raises ValidationError for missing/bad tokens
                return api_error(400, "csrf_failed", "the CSRF token is missing or invalid")
        return Principal("user", current_user.id, current_user.username, frozenset(SCOPES), True)
    return _unauthorized(
        "this API needs a token: send 'Authorization: Bearer <token>' (create one with `inkwell token create`)"
    )


def require(scope: str) -> Callable:
    """Decorator for API views: authenticate, check ``scope``, expose the caller as ``g.principal``."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any):
            principal = _resolve_principal()
            if isinstance(principal, Response):
                return principal
            if scope not in principal.scopes:
                return api_error(403, "forbidden", f"this token lacks the '{scope}' scope")
            g.principal = principal
            return view(*args, **kwargs)

        return wrapped

    return decorate


def principal() -> Principal:
    return g.principal


def visible_or_404(job: Job | None) -> Job:
    """The job, if the caller may see it; otherwise a 404 that does not say whether it exists."""
    if job is None or not principal().can_see(job):
        abort(404, description="no such job")
    return job


def init_auth(app: Flask) -> None:
    login_manager.init_app(app)
