"""Who may do what: reviewers' sessions, API tokens and scopes, CSRF, 401 versus 403."""

from __future__ import annotations

import io
import time
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import update

from inkwell.accounts import revoke_token, set_user_active
from inkwell.config import Settings
from inkwell.migrate import upgrade
from inkwell.models import ApiToken, SignInFailure, utcnow
from tests.clients import PASSWORD, api_client, csrf_token, make_token, make_user, signed_in
from tests.images import line_png
from webui import create_app


@pytest.fixture
def app(backend_settings: Settings) -> Flask:
    upgrade(backend_settings)
    return create_app(backend_settings)


def _submit(client) -> str:
    response = client.post("/api/v1/jobs", data={"files": (io.BytesIO(line_png("yes")), "y.png")})
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


@pytest.mark.parametrize("path", ["/", "/jobs/abc", "/search?q=x", "/pages/1/similar", "/jobs/abc/pages/1/review"])
def test_pages_need_a_signed_in_reviewer(app: Flask, path: str) -> None:
    response = app.test_client().get(path)
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")


def test_sign_in_and_health_are_public(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/sign-in").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/jobs"),
        ("get", "/api/v1/jobs/x"),
        ("post", "/api/v1/jobs"),
        ("get", "/api/v1/lines/1"),
        ("patch", "/api/v1/lines/1"),
        ("get", "/api/v1/search?q=a"),
        ("post", "/api/v1/pages/1/review"),
        ("get", "/api/v1/pages/1/similar"),
    ],
)
def test_the_api_needs_credentials(app: Flask, method: str, path: str) -> None:
    anonymous = getattr(app.test_client(), method)(path)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.get_json()["error"]["code"] == "unauthorized"
    bogus = getattr(app.test_client(), method)(path, headers={"Authorization": "Bearer ink_not-a-real-token"})
    assert bogus.status_code == 401
    basic = getattr(app.test_client(), method)(path, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401


def test_scopes_are_enforced_with_403(app: Flask) -> None:
    reader = api_client(app, ["read"])
    denied = reader.post("/api/v1/jobs", data={"files": (io.BytesIO(line_png("x")), "x.png")})
    assert denied.status_code == 403 and "submit" in denied.get_json()["error"]["message"]
    submitter = api_client(app, ["submit"])
    job_id = _submit(submitter)
    assert submitter.get(f"/api/v1/jobs/{job_id}").status_code == 403  # cannot read, not even its own
    assert submitter.patch("/api/v1/lines/1", json={"reviewed": True}).status_code == 403


def test_a_token_sees_only_its_own_jobs_unless_scoped_for_all(app: Flask) -> None:
    mine, other, auditor = (
        api_client(app, ["submit", "read"]),
        api_client(app, ["submit", "read"]),
        api_client(app, ["read"], all_jobs=True),
    )
    job_id = _submit(mine)
    assert mine.get(f"/api/v1/jobs/{job_id}").status_code == 200
    hidden = other.get(f"/api/v1/jobs/{job_id}")
    assert hidden.status_code == 404 and hidden.get_json()["error"]["code"] == "not_found"
    assert other.get(f"/api/v1/jobs/{job_id}/result").status_code == 404
    assert [j["id"] for j in other.get("/api/v1/jobs").get_json()["jobs"]] == []
    assert [j["id"] for j in mine.get("/api/v1/jobs").get_json()["jobs"]] == [job_id]
    assert auditor.get(f"/api/v1/jobs/{job_id}").status_code == 200


def test_revoked_tokens_stop_working_at_once(app: Flask) -> None:
    secret = make_token(app, ["read"])
    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/jobs", headers=headers).status_code == 200
    with app.extensions["inkwell"]["database"].session() as session:
        token = session.query(ApiToken).filter_by(prefix=secret[:10]).one()
        assert token.last_used_at is not None and token.token_hash != secret and secret not in token.token_hash
        revoke_token(session, token.id)
    assert client.get("/api/v1/jobs", headers=headers).status_code == 401


def test_wrong_passwords_and_disabled_users_cannot_sign_in(app: Flask) -> None:
    username = make_user(app)
    client = app.test_client()
    token = csrf_token(client.get("/sign-in").get_data(as_text=True))
    wrong = client.post("/sign-in", data={"csrf_token": token, "username": username, "password": "not the password"})
    assert wrong.status_code == 401 and "Wrong username or password" in wrong.get_data(as_text=True)
    nobody = client.post("/sign-in", data={"csrf_token": token, "username": "nobody", "password": PASSWORD})
    assert nobody.status_code == 401
    no_csrf = client.post("/sign-in", data={"username": username, "password": PASSWORD})
    assert no_csrf.status_code == 400

    browser = signed_in(app, username)
    assert browser.get("/").status_code == 200
    with app.extensions["inkwell"]["database"].session() as session:
        set_user_active(session, username, False)
    assert browser.get("/").status_code == 302, "a disabled reviewer's open session stops"
    assert browser.get("/api/v1/jobs").status_code == 401
    again = app.test_client()
    token = csrf_token(again.get("/sign-in").get_data(as_text=True))
    assert (
        again.post("/sign-in", data={"csrf_token": token, "username": username, "password": PASSWORD}).status_code
        == 401
    )


def test_sign_out_needs_csrf_and_ends_the_session(app: Flask) -> None:
    browser = signed_in(app)
    page = browser.get("/").get_data(as_text=True)
    assert browser.post("/sign-out").status_code == 400
    assert browser.post("/sign-out", data={"csrf_token": csrf_token(page)}).status_code == 302
    assert browser.get("/").status_code == 302


def test_sessions_expire(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="x", session_hours=1 / 3600)  # one second
    upgrade(settings)
    app = create_app(settings)
    browser = signed_in(app)
    assert browser.get("/").status_code == 200
    time.sleep(2.1)
    assert browser.get("/").status_code == 302
    assert app.permanent_session_lifetime == timedelta(seconds=1)


def test_sign_in_never_redirects_off_site(app: Flask) -> None:
    username = make_user(app)
    for target, expected in (("/search?q=x", "/search?q=x"), ("https://evil.example/", "/"), ("//evil.example/", "/")):
        client = app.test_client()
        token = csrf_token(client.get("/sign-in").get_data(as_text=True))
        response = client.post(
            f"/sign-in?next={target}", data={"csrf_token": token, "username": username, "password": PASSWORD}
        )
        assert response.headers["Location"] == expected


def test_session_writes_to_the_api_need_the_csrf_header(app: Flask) -> None:
    browser = signed_in(app)
    assert browser.get("/api/v1/jobs").status_code == 200  # reads: the session is enough
    refused = browser.post("/api/v1/jobs", data={"files": (io.BytesIO(line_png("x")), "x.png")})
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "csrf_failed"
    token = csrf_token(browser.get("/").get_data(as_text=True))
    accepted = browser.post(
        "/api/v1/jobs", data={"files": (io.BytesIO(line_png("x")), "x.png")}, headers={"X-CSRFToken": token}
    )
    assert accepted.status_code == 202


def test_sign_out_revokes_the_session_on_the_server(app: Flask) -> None:
    """A copy of the cookie taken before sign-out (stolen, or another tab) no longer reads, patches or uploads."""
    username = make_user(app)
    browser = signed_in(app, username)
    token = csrf_token(browser.get("/").get_data(as_text=True))
    stolen = app.test_client()
    stolen.set_cookie("session", browser.get_cookie("session").value)
    assert stolen.get("/api/v1/jobs").status_code == 200, "the copied cookie works while the session lives"
    assert browser.post("/sign-out", data={"csrf_token": token}).status_code == 302
    assert stolen.get("/").status_code == 302
    assert stolen.get("/api/v1/jobs").status_code == 401
    assert stolen.patch("/api/v1/lines/1", json={"reviewed": True}, headers={"X-CSRFToken": token}).status_code == 401
    upload = stolen.post(
        "/api/v1/jobs", data={"files": (io.BytesIO(line_png("x")), "x.png")}, headers={"X-CSRFToken": token}
    )
    assert upload.status_code == 401
    again = signed_in(app, username)  # signing in again starts a new, valid session
    assert again.get("/api/v1/jobs").status_code == 200
    assert stolen.get("/api/v1/jobs").status_code == 401


def _try_sign_in(app: Flask, username: str, password: str, address: str = "192.0.2.10"):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    token = csrf_token(client.get("/sign-in").get_data(as_text=True))
    return client.post("/sign-in", data={"csrf_token": token, "username": username, "password": password})


def test_sign_in_is_throttled_per_account(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    username, other = make_user(app), make_user(app)
    limit = app.extensions["inkwell"]["settings"].sign_in_max_failures
    for attempt in range(limit):
        assert _try_sign_in(app, username, f"guess {attempt}", address=f"192.0.2.{attempt}").status_code == 401
    locked = _try_sign_in(
        app, username.upper(), PASSWORD, address="198.51.100.1"
    )  # the right password, another address, other case
    assert locked.status_code == 429 and 0 < int(locked.headers["Retry-After"]) <= 900
    assert "Too many failed sign-ins" in locked.get_data(as_text=True)
    assert any("sign-in refused" in record.getMessage() for record in caplog.records), "lockouts are logged"
    assert _try_sign_in(app, other, PASSWORD).status_code == 302, "other accounts are not affected"
    with app.extensions["inkwell"]["database"].session() as session:  # the window passes
        session.execute(update(SignInFailure).values(at=utcnow() - timedelta(seconds=901)))
    assert _try_sign_in(app, username, PASSWORD).status_code == 302
    assert _try_sign_in(app, username, "wrong").status_code == 401, "a success cleared the earlier failures"
    assert _try_sign_in(app, username, PASSWORD).status_code == 302


def test_sign_in_is_throttled_per_address(app: Flask) -> None:
    settings = app.extensions["inkwell"]["settings"]
    victim = make_user(app)
    for attempt in range(
        settings.sign_in_max_failures_per_address
    ):  # one guess for each of many names: no account locks
        assert _try_sign_in(app, f"name{attempt}", "guess", address="203.0.113.9").status_code == 401
    assert _try_sign_in(app, victim, PASSWORD, address="203.0.113.9").status_code == 429
    assert _try_sign_in(app, victim, PASSWORD, address="203.0.113.10").status_code == 302
