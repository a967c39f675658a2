"""Applying and checking database migrations (Alembic) from code."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from inkwell.config import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


def alembic_config(settings: Settings) -> Config:
    """An Alembic configuration bound to ``settings`` (its database URL)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["settings"] = settings
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the database up to ``revision`` (creating the SQLite file and folder if needed)."""
    if settings.uses_sqlite:
        settings.ensure_data_dir()
    command.upgrade(alembic_config(settings), revision)


def check(settings: Settings) -> None:
    """Raise if the models and the migrations disagree (``alembic check``)."""
    command.check(alembic_config(settings))


def downgrade(settings: Settings, revision: str) -> None:
    """Take the database back to ``revision``."""
    command.downgrade(alembic_config(settings), revision)
