"""Alembic environment: Inkwell's own settings and metadata, so migrations never drift from the models."""

from __future__ import annotations

from alembic import context

from inkwell import models  # noqa: F401 - registers every table on Base.metadata
from inkwell.config import Settings
from inkwell.db import Base, make_engine

config = context.config


def _settings() -> Settings:
    # Tests and `inkwell migrate` pass their Settings object; the alembic CLI reads the environment.
    given = config.attributes.get("settings")
    return given if given is not None else Settings()


def _include_object(obj, name, type_, reflected, compare_to) -> bool:
    # PostgreSQL-only trigram search indexes (revision 0005) are not in the models' metadata.
    return not (type_ == "index" and reflected and name and name.endswith("_trgm"))


def run_migrations_offline() -> None:
    context.configure(
        url=_settings().database_url,
        target_metadata=Base.metadata,
        literal_binds=True,
        compare_type=True,
        include_object=_include_object,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_settings())
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a table by copy, drop and rename; with foreign keys on, the drop
            # would cascade and delete every child row. Must be set outside a transaction.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            compare_type=True,
            include_object=_include_object,
            # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
            render_as_batch=sqlite,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"migration left rows pointing at missing rows: {broken[:5]}")
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
