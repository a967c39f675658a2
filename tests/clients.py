"""Test clients with credentials: an API token, or a signed-in reviewer session."""

from __future__ import annotations

import itertools
import re

from flask import Flask
from flask.testing import FlaskClient

from inkwell.accounts import create_token, create_user

_names = itertools.count(1)
PASSWORD = "correct horse battery staple"


def make_token(app: Flask, scopes: list[str], all_jobs: bool = False) -> str:
    with app.extensions["inkwell"]["database"].session() as session:
        return create_token(session, f"test-{next(_names)}", scopes, all_jobs).secret


def api_client(app: Flask, scopes: list[str], all_jobs: bool = False) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_token(app, scopes, all_jobs)}"
    return client


def make_user(app: Flask, username: str | None = None) -> str:
    username = username or f"reviewer{next(_names)}"
    with app.extensions["inkwell"]["database"].session() as session:
        create_user(session, username, PASSWORD)
    return username


def csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def signed_in(app: Flask, username: str | None = None) -> FlaskClient:
    username = username or make_user(app)
    client = app.test_client()
    form = client.get("/sign-in").get_data(as_text=True)
    response = client.post(
        "/sign-in", data={"csrf_token": csrf_token(form), "username": username, "password": PASSWORD}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return client
