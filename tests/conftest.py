"""Shared fixtures: settings per backend, real PostgreSQL databases and Redis databases, tiny models."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from inkwell.config import Settings
from inkwell.db import Database
from inkwell.migrate import upgrade
from tests.browser_session import browser, signed_in_page, ui_service  # noqa: F401 - the browser tests' fixtures
from tests.tiny_models import build_tiny_model

# make test brings these up (scripts/ensure-services.sh); override to use other servers.
POSTGRES_ADMIN_URL = os.environ.get(
    "INKWELL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("INKWELL_TEST_REDIS_URL", "redis://127.0.0.1:6379")

_redis_databases = itertools.cycle(range(1, 16))


@pytest.fixture(autouse=True)
def _no_inkwell_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build their own Settings; a developer's INKWELL_* variables must not leak in."""
    for name in list(os.environ):
        if name.startswith("INKWELL_") and not name.startswith("INKWELL_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def tiny_char_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model("char", tmp_path_factory.mktemp("tiny-char"))


@pytest.fixture(scope="session")
def tiny_bpe_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model("bpe", tmp_path_factory.mktemp("tiny-bpe"))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    with new_postgres_database() as url:
        yield url


@contextmanager
def new_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (its URL), dropped when the block ends; for any fixture scope."""
    name = f"inkwell_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_url() -> str:
    """A Redis database number of its own, emptied first."""
    url = f"{REDIS_URL}/{next(_redis_databases)}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for a test: everything under ``data_dir`` unless overridden, no environment."""
    return Settings(data_dir=data_dir, secret_key="test-secret", **overrides)


@pytest.fixture(params=["sqlite", "postgres"])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings on the embedded SQLite default, then on a real PostgreSQL database."""
    if request.param == "sqlite":
        return make_settings(tmp_path)
    return make_settings(tmp_path, database_url=request.getfixturevalue("postgres_url"))


@pytest.fixture
def database(backend_settings: Settings) -> Iterator[Database]:
    """A migrated database on each backend."""
    upgrade(backend_settings)
    db = Database(backend_settings)
    yield db
    db.engine.dispose()


@pytest.fixture
def app(backend_settings: Settings):
    """The web app on a migrated database of each backend (a test module may define its own)."""
    from webui import create_app

    upgrade(backend_settings)
    return create_app(backend_settings)


@pytest.fixture(scope="module")
def recognizer(tiny_char_model: Path):
    """The tiny character model through the service's Recognizer, on the CPU."""
    from worker.recognizer import Recognizer

    return Recognizer.load(tiny_char_model, device="cpu", max_new_tokens=32)


@pytest.fixture
def reviewer(app):
    """An API client whose token may submit, read and review."""
    from tests.clients import api_client

    return api_client(app, ["submit", "read", "review"])


@pytest.fixture(scope="session")
def xml_schemas():
    """Official ALTO v4 and PAGE 2019 XSDs (see tests/schemas.py)."""
    from tests.schemas import load_schemas

    return load_schemas()
