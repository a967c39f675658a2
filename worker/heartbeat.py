"""Worker heartbeats in the database, so /readyz can tell whether each queue has a live worker."""

from __future__ import annotations

import logging
import threading

from sqlalchemy import delete

from inkwell.config import Settings
from inkwell.db import Database
from inkwell.models import WorkerHeartbeat, utcnow

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 15.0


class Heartbeat:
    """A daemon thread in the worker's main process that stamps ``worker_heartbeats`` every few seconds."""

    def __init__(self, settings: Settings, name: str, queues: str) -> None:
        self.name = name[:255]
        self.queues = queues[:64]
        self.database = Database(settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inkwell-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _beat(self) -> None:
        with self.database.session() as session:
            row = session.get(WorkerHeartbeat, self.name)
            if row is None:
                session.add(WorkerHeartbeat(name=self.name, queues=self.queues, seen_at=utcnow()))
            else:
                row.seen_at, row.queues = utcnow(), self.queues

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._beat()
            except Exception:  # noqa: BLE001 - a missed beat (database restarting) must not kill the worker
                log.warning("heartbeat not written", exc_info=True)
            self._stop.wait(INTERVAL_SECONDS)

    def stop(self) -> None:
        self._stop.set()
        try:
            with self.database.session() as session:
                session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.name == self.name))
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
        self.database.engine.dispose()
