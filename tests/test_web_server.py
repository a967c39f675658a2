"""The real web server (``inkwell web``: gunicorn with Inkwell's threaded worker): clients that
stall mid-request do not starve the others, and every answer, gunicorn's own errors included,
carries the security headers and no server banner."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import requests

from tests.processes import Processes, free_port, wait_until_up
from webui.headers import SECURITY_HEADERS

pytestmark = pytest.mark.slow

READ_TIMEOUT = 2


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory):
    folder: Path = tmp_path_factory.mktemp("web")
    port = free_port()
    processes = Processes(
        {
            "INKWELL_DATA_DIR": str(folder / "var"),
            "INKWELL_WEB_PORT": str(port),
            "INKWELL_WEB_WORKERS": "1",
            "INKWELL_WEB_THREADS": "4",
            "INKWELL_WEB_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
            "INKWELL_SECRET_KEY": "x",
        },
        folder,
    )
    processes.run("migrate")
    processes.start("web", "web")
    base = f"http://127.0.0.1:{port}"
    wait_until_up(f"{base}/healthz", processes)
    yield base, port, processes
    processes.stop_all()


def _stalled_client(port: int) -> socket.socket:
    """A client that sends part of a request's headers, then nothing."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; bound")
    return sock


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        sock.recv(65536)  # returns on an orderly close (b"") or an error answer: either way the server let go
    except TimeoutError:
        return False
    except OSError:
        pass  # reset: let go as well
    return True


def test_stalled_clients_do_not_starve_the_others(web) -> None:
    base, port, processes = web
    few = [_stalled_client(port) for _ in range(3)]  # more than the two sync workers they used to hold
    time.sleep(0.5)
    assert requests.get(f"{base}/healthz", timeout=5).status_code == 200, "threads still free: answered at once"
    many = [_stalled_client(port) for _ in range(8)]  # more than this worker's threads
    time.sleep(0.5)
    assert requests.get(f"{base}/healthz", timeout=READ_TIMEOUT * 6).status_code == 200, (
        "stalled reads time out and free their threads"
    )
    for sock in few + many:
        assert _closed_by_server(sock, READ_TIMEOUT * 6), "a stalled client is dropped after the read timeout"
        sock.close()
    assert requests.get(f"{base}/healthz", timeout=5).status_code == 200


def _assert_headers(response: requests.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.status_code, name, dict(response.headers))
    assert "Server" not in response.headers, response.headers.get("Server")


def test_every_answer_has_the_security_headers_and_no_banner(web) -> None:
    base, _, _ = web
    _assert_headers(requests.get(f"{base}/healthz", timeout=5))
    _assert_headers(requests.get(f"{base}/sign-in", timeout=5))
    _assert_headers(requests.get(f"{base}/api/v1/jobs", timeout=5))
    too_long = requests.get(f"{base}/search?q={'a' * 9000}", timeout=5)  # refused by gunicorn itself
    assert too_long.status_code == 414 and too_long.json()["error"]["code"] == "uri_too_long"
    _assert_headers(too_long)
    too_many = requests.get(f"{base}/healthz", headers={f"X-Filler-{i}": "x" for i in range(150)}, timeout=5)
    assert too_many.status_code in (400, 431)
    _assert_headers(too_many)
    assert set(too_many.json()["error"]) == {"code", "message"}
