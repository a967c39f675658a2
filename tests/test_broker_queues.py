"""Declaring the SQL broker's queues at start-up, when several processes open a new broker at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event

from inkwell.config import Settings
from inkwell.queue import (
    QUEUE_PAGES,
    declare_sql_broker_queues,
    enqueue_pages,
    forget_inherited_broker_connections,
    make_celery,
)
from tests.broker import drain
from tests.processes import free_port


@pytest.fixture
def another_process_inserts_first(tmp_path: Path) -> Iterator[list[str]]:
    """Just before this process inserts a queue row, insert the same row from another connection.

    That is the interleaving two processes starting together on a new broker database can meet;
    the names inserted this way are collected in the list yielded.
    """
    inserted: list[str] = []
    broker_file = tmp_path / "broker.db"

    def before_execute(_conn, _cursor, statement: str, parameters, _context, _executemany) -> None:
        if statement.startswith("INSERT INTO kombu_queue") and not inserted:
            with sqlite3.connect(broker_file) as other:
                other.execute(statement, parameters)
            inserted.append(parameters[0])

    event.listen(Engine, "before_cursor_execute", before_execute)
    try:
        yield inserted
    finally:
        event.remove(Engine, "before_cursor_execute", before_execute)


def test_a_queue_another_process_created_first_is_declared_and_used(
    tmp_path: Path, another_process_inserts_first: list[str]
) -> None:
    celery = make_celery(Settings(data_dir=tmp_path))
    assert declare_sql_broker_queues(celery)
    assert another_process_inserts_first, "the race was not set up: no queue row was inserted"
    assert enqueue_pages(celery, [7, 8])
    assert [arguments[0] for _, arguments in drain(celery, QUEUE_PAGES)] == [7, 8]


def test_an_unreachable_sql_broker_is_reported_not_raised(tmp_path: Path) -> None:
    broker = f"sqla+postgresql://postgres@127.0.0.1:{free_port()}/none"
    celery = make_celery(Settings(data_dir=tmp_path, broker_url=broker))
    assert declare_sql_broker_queues(celery, attempts=2) is False


def test_other_brokers_need_no_declaring(tmp_path: Path) -> None:
    # nothing listens there: declaring must not even try to connect
    celery = make_celery(Settings(data_dir=tmp_path, broker_url=f"redis://127.0.0.1:{free_port()}/0"))
    assert declare_sql_broker_queues(celery)


def _publish_in_a_forked_child(data_dir: Path, pooled_in_child: multiprocessing.Queue) -> None:
    from kombu.transport.sqlalchemy import Channel

    engines = [engine for engine, _ in Channel._engines.values()]
    forget_inherited_broker_connections()
    pooled_in_child.put([engine.pool.checkedin() for engine in engines])
    enqueue_pages(make_celery(Settings(data_dir=data_dir)), [2])


def test_a_forked_worker_child_publishes_on_connections_of_its_own(tmp_path: Path) -> None:
    """kombu keeps one engine per process; a forked child must not publish on the parent's pooled
    connection (one SQLite handle used by two processes)."""
    from kombu.transport.sqlalchemy import Channel

    celery = make_celery(Settings(data_dir=tmp_path))
    assert enqueue_pages(celery, [1])  # the parent now holds a pooled connection to broker.db
    assert sum(engine.pool.checkedin() for engine, _ in Channel._engines.values()) >= 1
    context = multiprocessing.get_context("fork")
    pooled_in_child = context.Queue()
    child = context.Process(target=_publish_in_a_forked_child, args=(tmp_path, pooled_in_child))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert set(pooled_in_child.get(timeout=5)) == {0}
    assert sorted(arguments[0] for _, arguments in drain(celery, QUEUE_PAGES)) == [1, 2]
