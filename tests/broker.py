"""Reading what was sent to a real broker queue, for tests that check what got enqueued."""

from __future__ import annotations

from celery import Celery


def drain(celery: Celery, queue: str) -> list[tuple[str, list]]:
    """Take every message now in ``queue``: (task name, positional arguments) per message."""
    found = []
    with celery.connection_for_read() as connection:
        simple = connection.SimpleQueue(queue)
        while True:
            try:
                message = simple.get(timeout=0.3)
            except simple.Empty:
                break
            found.append((message.headers["task"], message.payload[0]))
            message.ack()
        simple.close()
    return found
