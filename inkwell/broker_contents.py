"""What the broker still holds: the ids in the messages waiting in a queue or delivered and not yet
acknowledged. The sweeper asks before sending a page again, so a page that is only waiting its
turn behind a backlog is never sent twice.

Implemented for Redis (kombu keeps each queue as a list, per priority, and every delivered,
unacknowledged message in the ``unacked`` hash until it is acknowledged). For other brokers the
answer is "unknown" (None) and the sweeper falls back to sending pages that waited too long.
"""

from __future__ import annotations

import base64
import json
import logging
import time

from celery import Celery

log = logging.getLogger(__name__)

PRIORITY_SEPARATOR = "\x06\x16"  # kombu's Redis transport names a queue's priority lists "<queue>\x06\x16<priority>"
PRIORITY_STEPS = (0, 3, 6, 9)
UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"  # delivery tag -> when it was delivered
STUCK_AFTER_TIMEOUTS = 2  # unacknowledged this many visibility timeouts: kombu failed to give it back


def _first_argument(raw: bytes | str, task: str) -> int | str | tuple | None:
    """The first argument of a Celery message (kombu's Redis JSON envelope), if it is ``task``'s."""
    try:
        envelope = json.loads(raw)
        if isinstance(envelope, list):  # the unacked hash stores [message, exchange, routing key]
            envelope = envelope[0]
        if envelope.get("headers", {}).get("task") != task:
            return None
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        first = args[0] if args else None
        return tuple(first) if isinstance(first, list) else first  # a list of ids (inkwell.read_lines): hashable
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None


def held_arguments(celery: Celery, queue: str, task: str) -> set | None:
    """First arguments of ``task`` messages the broker holds for ``queue`` (waiting or delivered
    and unacknowledged); None when the broker cannot be inspected this way."""
    if not celery.conf.broker_url.startswith(("redis://", "rediss://")):
        return None
    try:
        with celery.connection_for_write() as connection:
            client = connection.default_channel.client
            lists = [queue] + [f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS if step]
            # unacked, then the lists, then unacked again: a message moving from a list to the hash
            # while we look is seen in one of them
            stuck_after = _stuck_after(celery)
            raw = _unacknowledged(client, stuck_after)
            for name in lists:
                raw += client.lrange(name, 0, -1)
            raw += _unacknowledged(client, stuck_after)
    except Exception:  # noqa: BLE001 - cannot tell: the caller falls back to timing alone
        log.warning("could not read the broker's queue %s", queue, exc_info=True)
        return None
    return {argument for argument in (_first_argument(item, task) for item in raw) if argument is not None}


def _stuck_after(celery: Celery) -> float | None:
    timeout = (celery.conf.broker_transport_options or {}).get("visibility_timeout")
    return STUCK_AFTER_TIMEOUTS * float(timeout) if timeout else None


def _unacknowledged(client, stuck_after: float | None) -> list:
    """Delivered, unacknowledged messages, less those delivered more than ``stuck_after`` seconds ago.

    kombu gives a message back to its queue once it has been unacknowledged for the visibility
    timeout. One still there long after is stuck, not being worked on, and the sweeper sends its
    page again (reading it twice is harmless). A fault test met one: Redis restarted mid-job and a
    page stayed prepared, its message unacknowledged, for the test's whole 300 s. Our best
    explanation, not a proven one: kombu's restore runs under a lock kept in Redis for up to
    5 minutes, which the restart can leave held.
    """
    if stuck_after is None:
        return list(client.hvals(UNACKED))
    recent = client.zrangebyscore(UNACKED_INDEX, time.time() - stuck_after, "+inf")
    return [raw for raw in client.hmget(UNACKED, recent) if raw is not None] if recent else []
