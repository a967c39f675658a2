"""The web server: gunicorn's threaded worker, hardened against slow clients, without a banner.

gunicorn's sync worker serves one connection per process from its first byte to its last, so
two clients that send half a request and stall held both default workers (and ``/healthz``
timed out). This worker is gunicorn's ``gthread`` one (connections wait in a poller until they
send something, then a thread from a pool serves them) with a read timeout on every connection,
so a client that stalls mid-request frees its thread after ``INKWELL_WEB_READ_TIMEOUT_SECONDS``.
It also answers gunicorn's own errors (a request line or headers too large: 414, 431; a
malformed request: 400) in Inkwell's JSON error shape with the same security headers as every
other answer, and sends no ``Server`` header on any answer.

gunicorn offers no setting for those last two: they are done by replacing its response class and
its error writer inside this worker's process (gunicorn is pinned, see pyproject.toml).
"""

from __future__ import annotations

import errno
import json

from gunicorn import util
from gunicorn.http import wsgi
from gunicorn.workers.gthread import TConn, ThreadWorker

from inkwell.config import get_settings
from webui.headers import SECURITY_HEADERS


class QuietResponse(wsgi.Response):
    """gunicorn's response without its ``Server: gunicorn`` banner."""

    def default_headers(self) -> list[str]:
        return [line for line in super().default_headers() if not line.lower().startswith("server:")]


def write_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own error answers, in the API's error shape and with the security headers."""
    body = json.dumps({"error": {"code": reason.lower().replace(" ", "_"), "message": mesg or reason}}).encode()
    head = [
        f"HTTP/1.1 {status_int} {reason}",
        "Connection: close",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    head += [f"{name}: {value}" for name, value in SECURITY_HEADERS.items()]
    util.write_nonblock(sock, ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


class TimedConnection(TConn):
    """A connection whose every read and write gives up after the read timeout."""

    read_timeout: float = 10.0

    def init(self) -> None:
        super().init()  # (a no-op after the first request of a kept-alive connection)
        # gthread makes the socket blocking before each request; blocking with a timeout instead
        self.sock.settimeout(self.read_timeout)


class InkwellWorker(ThreadWorker):
    """gunicorn's gthread worker with timed connections, quiet responses and Inkwell's error answers."""

    def init_process(self) -> None:
        TimedConnection.read_timeout = get_settings().web_read_timeout_seconds
        wsgi.Response = QuietResponse  # wsgi.create() builds every answer from this name
        util.write_error = write_error  # the base worker's handle_error() writes through this name
        super().init_process()

    def accept(self, listener) -> None:
        """gunicorn's accept(), with a TimedConnection for each client."""
        try:
            client_sock, client_addr = listener.accept()
            self.nr_conns += 1
            client_sock.setblocking(True)
            self.enqueue_req(TimedConnection(self.cfg, client_sock, client_addr, listener.getsockname()))
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
