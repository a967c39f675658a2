"""Settings: defaults, environment overrides, fail-fast validation."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from inkwell.config import BUNDLED_MODEL, Settings


def test_embedded_defaults_live_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'inkwell.db'}"
    assert settings.broker_url == f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    assert settings.model == str(BUNDLED_MODEL)
    assert settings.uses_sqlite


def test_environment_switches_to_production_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INKWELL_DATABASE_URL", "postgresql://u:p@db:5432/inkwell")
    monkeypatch.setenv("INKWELL_BROKER_URL", "redis://redis:6379/0")
    monkeypatch.setenv("INKWELL_LINES_FLUSH_EVERY", "16")
    settings = Settings()
    # plain postgresql:// is mapped onto the psycopg 3 driver Inkwell ships
    assert settings.database_url == "postgresql+psycopg://u:p@db:5432/inkwell"
    assert settings.broker_url == "redis://redis:6379/0"
    assert settings.lines_flush_every == 16
    assert not settings.uses_sqlite


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("INKWELL_DATABASE_URL", "mysql://x/y"),
        ("INKWELL_BROKER_URL", "kafka://x"),
        ("INKWELL_WEB_PORT", "70000"),
        ("INKWELL_MAX_NEW_TOKENS", "0"),
        ("INKWELL_LINES_FLUSH_EVERY", "lots"),
        ("INKWELL_PREPROCESSING", "stretch"),
    ],
)
def test_bad_values_fail_at_start_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert variable.removeprefix("INKWELL_").lower() in str(raised.value).lower()


def test_file_limit_cannot_exceed_request_limit() -> None:
    with pytest.raises(ValidationError, match="MAX_FILE_BYTES"):
        Settings(max_file_bytes=10, max_request_bytes=5)


def test_generated_secret_is_shared_through_the_data_dir(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).resolved_secret_key()
    second = Settings(data_dir=tmp_path).resolved_secret_key()
    assert first == second and len(first) == 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert Settings(data_dir=tmp_path, secret_key="given").resolved_secret_key() == "given"


def _secret_in_a_new_process(data_dir: str, start: float) -> str:
    time.sleep(max(0.0, start - time.time()))  # all at one moment, as gunicorn's workers boot
    return Settings(data_dir=Path(data_dir)).resolved_secret_key()


def test_processes_starting_together_share_one_generated_secret(tmp_path: Path) -> None:
    """Web workers boot at once: one of them failed to boot (another had renamed the temporary file
    it was still writing) and took the server down; all must get the one key, and no file is left."""
    from concurrent.futures import ProcessPoolExecutor

    for attempt in range(15):  # the old race hit about one start in three
        data_dir = tmp_path / str(attempt)
        with ProcessPoolExecutor(8) as pool:
            start = time.time() + 0.5  # once every process has started
            keys = set(pool.map(_secret_in_a_new_process, [str(data_dir)] * 8, [start] * 8))
        assert len(keys) == 1 and keys == {(data_dir / "secret_key").read_text().strip()}
        assert sorted(path.name for path in data_dir.iterdir()) == ["secret_key"]
        assert (data_dir / "secret_key").stat().st_mode & 0o077 == 0
