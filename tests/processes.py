"""Starting and stopping real Inkwell processes (web server, workers) for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """A set of ``inkwell`` child processes sharing one environment, with their logs kept for failures."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_dir = log_dir
        self.children: dict[str, subprocess.Popen] = {}

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "inkwell", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.log_dir / f"{name}.log").open("w")
        child = subprocess.Popen(
            [sys.executable, "-m", "inkwell", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.children[name] = child
        return child

    def start_service(self, base_url: str) -> None:
        """The web server and a worker for each queue, as separate processes; returns once the web answers."""
        self.start("web", "web")
        self.start("pages", "worker", "-Q", "pages")
        self.start("lines", "worker", "-Q", "lines")
        wait_until_up(f"{base_url}/healthz", self)

    def logs(self) -> str:
        return "\n".join(
            f"===== {path.name}\n{path.read_text()[-6000:]}" for path in sorted(self.log_dir.glob("*.log"))
        )

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        child = self.children.pop(name)
        if child.poll() is None:
            child.send_signal(sig)
        try:
            return child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            raise

    def stop_all(self) -> None:
        for name in list(self.children):
            try:
                self.stop(name)
            except subprocess.TimeoutExpired:
                pass


def wait_until_up(url: str, processes: Processes, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, child in processes.children.items():
            if child.poll() is not None:
                raise AssertionError(f"{name} exited with {child.returncode}\n{processes.logs()}")
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass  # not listening yet, or still starting up
        time.sleep(0.3)
    raise AssertionError(f"{url} did not come up\n{processes.logs()}")


def create_token(processes: Processes, scopes: str = "submit,read,review") -> dict[str, str]:
    """A new API token made with the command line; returns the request headers that carry it."""
    output = processes.run("token", "create", "e2e", "--scopes", scopes).stdout
    secret = output.split(": ", 1)[1].splitlines()[0].strip()
    return {"Authorization": f"Bearer {secret}"}


def wait_for_job(
    base_url: str, job_id: str, processes: Processes, headers: dict[str, str], timeout: float = 180
) -> dict:
    """Poll the job as a client would (honouring Retry-After) until it finishes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = requests.get(f"{base_url}/api/v1/jobs/{job_id}", headers=headers, timeout=10)
        body = response.json()
        if body["status"] in ("succeeded", "failed", "partial"):
            return body
        assert response.headers.get("Retry-After"), "a running job must say when to poll again"
        time.sleep(min(0.5, float(response.headers["Retry-After"])))
    raise AssertionError(f"job {job_id} did not finish: {body}\n{processes.logs()}")
