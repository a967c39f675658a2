"""docker-compose.yml and the Dockerfile stay correct without a Docker engine on this machine."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml
from click.testing import CliRunner

from inkwell.cli import main
from inkwell.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def _resolved() -> dict:
    """The file as docker-compose itself reads it (anchors merged, variables substituted)."""
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env={**os.environ, "INKWELL_SECRET_KEY": "test"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_is_valid_and_complete() -> None:
    services = _resolved()["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker-cpu", "worker-gpu", "beat", "prometheus"}
    assert services["beat"]["command"] == ["inkwell", "beat"]
    assert services["migrate"]["command"] == ["inkwell", "migrate"]
    for name in ("web", "worker-cpu", "worker-gpu", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["worker-cpu"]["command"][-2:] == ["-Q", "pages"]
    assert services["worker-gpu"]["command"][-2:] == ["-Q", "lines"]
    (device,) = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]


def test_prometheus_scrapes_the_web_server_and_every_worker() -> None:
    """prometheus.yml's targets are the services and ports compose really runs."""
    services = _resolved()["services"]
    mounts = [
        v if isinstance(v, dict) else dict(zip(("source", "target"), v.split(":")))
        for v in services["prometheus"]["volumes"]
    ]
    (mount,) = [m for m in mounts if m["target"] == "/etc/prometheus/prometheus.yml"]
    assert Path(mount["source"]) == ROOT / "prometheus.yml"
    config = yaml.safe_load((ROOT / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    web_port = services["web"]["command"][services["web"]["command"].index("--port") + 1]
    assert jobs["inkwell-web"]["static_configs"][0]["targets"] == [f"web:{web_port}"]
    assert jobs["inkwell-web"]["metrics_path"] == "/metrics"
    for name in ("worker-cpu", "worker-gpu"):
        (discovery,) = jobs[f"inkwell-{name}"]["dns_sd_configs"]
        assert (
            discovery["names"] == [name]
            and str(discovery["port"]) == services[name]["environment"]["INKWELL_METRICS_PORT"]
        )


def test_compose_refuses_to_start_without_a_secret() -> None:
    env = {k: v for k, v in os.environ.items() if k != "INKWELL_SECRET_KEY"}
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode != 0 and "INKWELL_SECRET_KEY" in result.stderr


def test_every_setting_and_command_in_compose_exists() -> None:
    fields = {f"INKWELL_{name.upper()}" for name in Settings.model_fields}
    for name, service in _resolved()["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            if variable.startswith("INKWELL_"):
                assert variable in fields, f"{name}: unknown setting {variable}"
                Settings.model_validate({variable.removeprefix("INKWELL_").lower(): value, "data_dir": "/tmp"})
        command = service.get("command")
        if command and command[0] == "inkwell":
            # --help parses the options without running anything: a typo'd flag fails here
            result = CliRunner().invoke(main, [*command[1:], "--help"])
            assert result.exit_code == 0, f"{name}: {command}: {result.output}"


def test_dockerfile_installs_the_same_torch_as_pyproject() -> None:
    pin = re.search(r'"torch==([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f'"torch=={pin}"' in dockerfile
    for folder in ("inkwell", "webui", "worker", "migrations"):
        assert f"COPY {folder} ./{folder}" in dockerfile
