"""The ``inkwell`` command: run the service (all of it, or web and workers apart) and read files.

Heavy imports (Flask, gunicorn, torch) happen inside the commands that need them, so
``inkwell web`` never loads torch and ``inkwell --help`` is instant.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from inkwell.config import Settings, get_settings

QUEUE_CHOICES = ("pages", "lines", "pages,lines")


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Inkwell reads handwriting on scanned forms."""


@main.command()
def migrate() -> None:
    """Apply database migrations (creates the embedded SQLite database if needed)."""
    from inkwell.migrate import upgrade

    settings = get_settings()
    _configure_logging(settings)
    upgrade(settings)
    click.echo(f"database is up to date: {_redacted(settings.database_url)}")


@main.command()
@click.option("--host", default=None, help="Listen address (default: INKWELL_WEB_HOST).")
@click.option("--port", type=int, default=None, help="Port (default: INKWELL_WEB_PORT).")
@click.option("--workers", type=int, default=None, help="gunicorn worker processes (default: INKWELL_WEB_WORKERS).")
def web(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the web server (gunicorn) alone."""
    from gunicorn.app.base import BaseApplication

    from inkwell.metrics import process_exited, use_metrics_dir

    settings = get_settings()
    _configure_logging(settings)
    use_metrics_dir(settings)  # before anything imports prometheus_client

    class _Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host or settings.web_host}:{port or settings.web_port}")
            self.cfg.set("workers", workers or settings.web_workers)
            self.cfg.set("worker_class", "webui.server.InkwellWorker")  # threaded, slow clients time out (see there)
            self.cfg.set("threads", settings.web_threads)
            self.cfg.set("keepalive", 5)
            self.cfg.set("timeout", 120)
            self.cfg.set("accesslog", "-")
            self.cfg.set("loglevel", settings.log_level.lower())
            self.cfg.set("child_exit", lambda _server, child: process_exited(child.pid))

        def load(self):
            from webui import create_app

            return create_app(settings)

    _Server().run()


@main.command()
@click.option(
    "-Q",
    "--queues",
    type=click.Choice(QUEUE_CHOICES),
    default="pages,lines",
    show_default=True,
    help="'pages' (CPU: decode, find lines), 'lines' (the model; GPU where there is one), or both.",
)
@click.option("-c", "--concurrency", type=int, default=None, help="Processes (default: from settings per queue).")
@click.option(
    "--beat", is_flag=True, help="Also run the periodic sweeper and purge (run exactly one of these per deployment)."
)
def worker(queues: str, concurrency: int | None, beat: bool) -> None:
    """Run a Celery worker for the given queues."""
    from inkwell.metrics import serve_metrics, use_metrics_dir

    settings = get_settings()
    use_metrics_dir(settings)  # before the worker's modules import prometheus_client

    from inkwell.queue import QUEUE_MAINTENANCE, lines_prefetch_multiplier
    from worker.celery_app import app

    if settings.metrics_port:
        serve_metrics(settings.metrics_port)
    if concurrency is None:
        concurrency = settings.lines_concurrency if queues == "lines" else settings.pages_concurrency
    prefetch = lines_prefetch_multiplier(settings) if "lines" in queues else 1
    consumed = queues + (f",{QUEUE_MAINTENANCE}" if "pages" in queues else "")  # the sweeper's own queue
    argv = [
        "worker",
        "-Q",
        consumed,
        "-c",
        str(concurrency),
        "--prefetch-multiplier",
        str(prefetch),
        "-n",
        f"{queues.replace(',', '+')}.{os.getpid()}@%h",
        "--loglevel",
        settings.log_level,
        "--without-gossip",
        "--without-mingle",
    ]
    if beat:
        argv += ["--beat", "--schedule", str(settings.ensure_data_dir() / "beat-schedule")]
    app.worker_main(argv)


@main.command()
def beat() -> None:
    """Run the periodic scheduler alone (the sweeper and the purge); one per deployment."""
    from inkwell.queue import declare_sql_broker_queues
    from worker.celery_app import app

    settings = get_settings()
    declare_sql_broker_queues(app)  # beat sends without a worker's start-up hooks
    app.start(
        ["beat", "--loglevel", settings.log_level, "--schedule", str(settings.ensure_data_dir() / "beat-schedule")]
    )


@main.command()
def sweep() -> None:
    """Send again, once, every page and callback whose message went missing."""
    from inkwell.queue import declare_sql_broker_queues, make_celery
    from inkwell.sweeper import sweep as sweep_once

    settings = get_settings()
    celery = make_celery(settings)
    declare_sql_broker_queues(celery)
    report = sweep_once(_database(), celery, settings.stale_after_seconds, settings.pages_in_flight_per_job)
    click.echo(
        f"sent again: {len(report.prepare)} pages to prepare, {len(report.recognize)} to read, {len(report.callbacks)} "
        "callbacks"
    )


@main.command()
@click.option("--days", type=int, default=None, help="Age in days (default: INKWELL_RETENTION_DAYS).")
def purge(days: int | None) -> None:
    """Delete jobs older than the retention period, with their files, images and results."""
    from inkwell.retention import purge as purge_jobs

    settings = get_settings()
    days = settings.retention_days if days is None else days
    if days <= 0:
        raise click.ClickException("no retention period: set INKWELL_RETENTION_DAYS or pass --days")
    click.echo(f"deleted {purge_jobs(_database(), days)} jobs older than {days} days")


@main.command()
def serve() -> None:
    """Migrate, then run the web server and both workers until Ctrl-C."""
    from inkwell.metrics import use_metrics_dir
    from inkwell.migrate import upgrade

    settings = get_settings()
    _configure_logging(settings)
    upgrade(settings)
    use_metrics_dir(settings, empty=True)  # this run owns the folder; its children inherit it
    base = [sys.executable, "-m", "inkwell_cli"]
    commands = {
        "web": base + ["web"],
        "pages worker": base + ["worker", "-Q", "pages", "--beat"],
        "lines worker": base + ["worker", "-Q", "lines"],
    }
    # Own process groups: Ctrl-C reaches only this process, which then stops the children in order.
    # The web server's /metrics shows every process here: no worker serves a port of its own.
    env = {name: value for name, value in os.environ.items() if name != "INKWELL_METRICS_PORT"}
    children = {name: subprocess.Popen(cmd, start_new_session=True, env=env) for name, cmd in commands.items()}
    click.echo(f"Inkwell is starting on http://{settings.web_host}:{settings.web_port} (Ctrl-C stops it)")
    if not _has_reviewers():
        click.echo(
            "No reviewer can sign in yet: create one with `.venv/bin/inkwell user create <name>`, "
            "and an API token with `.venv/bin/inkwell token create <name>`."
        )
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                click.echo(f"{name} exited with status {child.returncode}; stopping Inkwell", err=True)
                stopping, exit_code = True, 1
                break
        time.sleep(0.5)
    _terminate(children.values())
    sys.exit(exit_code)


def _has_reviewers() -> bool:
    from sqlalchemy import func, select

    from inkwell.models import User

    with _database().session() as session:
        return bool(session.scalar(select(func.count()).select_from(User)))


def _terminate(children, grace: float = 20.0) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file.")
@click.option("--lines", "as_lines", is_flag=True, help="Each page is one text line (skip line detection).")
@click.option("--model", default=None, help="Model folder or Hub id (default: INKWELL_MODEL, the bundled model).")
def recognize(files: tuple[Path, ...], as_json: bool, as_lines: bool, model: str | None) -> None:
    """Read FILES (images, multi-page TIFFs, PDFs) in this process, with no queue and no database."""
    from inkwell.errors import Refused
    from inkwell.intake import check_upload
    from inkwell.progress import echo_above
    from worker.page_image import PageDecodeError
    from worker.pipeline import cut_page, read_lines
    from worker.runtime import line_finder, load_recognizer, page_limits, quiet_libraries_off_terminal

    settings = get_settings()
    logging.basicConfig(level=logging.WARNING)
    quiet_libraries_off_terminal()
    # Every file is checked (its header: type, size, pages) before the model is loaded, so a
    # mistyped or unreadable file is reported at once, not after seconds of loading.
    failures, readable = 0, []
    for path in files:
        try:
            readable.append((path, check_upload(path.read_bytes(), str(path), settings.upload_limits())))
        except Refused as error:
            echo_above(str(error), err=True)  # the message starts with the file's name
            failures += 1
    if not readable:
        sys.exit(1)
    recognizer = load_recognizer(settings, model)
    limits = page_limits(settings)
    layout = "line" if as_lines else "page"
    for path, checked in _progress(readable, "files"):
        data = path.read_bytes()
        try:  # every page cut first, as the pages workers do: a file with a broken page is refused whole
            pages = [
                cut_page(data, checked.media_type, i, layout, limits, lambda image: line_finder().find(image))
                for i in range(checked.page_count)
            ]
        except PageDecodeError as error:
            echo_above(f"{path}: {error}", err=True)
            failures += 1
            continue
        lines, page_texts = [], []
        for number, page in enumerate(pages, start=1):
            results = read_lines(recognizer, [line.image for line in page.lines], capture=False)
            page_texts.append("\n".join(result.text for result in results))
            lines += [
                {"page": number, "text": r.text, "confidence": round(r.confidence, 4), "bbox": list(c.bbox)}
                for r, c in zip(results, page.lines, strict=True)
            ]
        text = "\n\f\n".join(page_texts)
        if as_json:
            echo_above(json.dumps({"file": str(path), "text": text, "lines": lines}, ensure_ascii=False))
        else:
            echo_above(text if len(files) == 1 else f"{path}: {text}")
    if failures:
        sys.exit(1)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--layer",
    "layers",
    type=int,
    multiple=True,
    required=True,
    help="Encoder layer (0 = patch embeddings, 1..L = blocks, negative from the end); repeat for several.",
)
@click.option(
    "--pool",
    type=click.Choice(["mean", "cls", "none"]),
    default="mean",
    show_default=True,
    help="mean of the patch states, the CLS token, or none: the whole patch grid.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The .npz file to write.")
@click.option("--lines", "as_lines", is_flag=True, help="Each page is one text line (skip line detection).")
@click.option("--model", default=None, help="Model folder or Hub id (default: INKWELL_MODEL, the bundled model).")
def features(
    files: tuple[Path, ...], layers: tuple[int, ...], pool: str, out: Path, as_lines: bool, model: str | None
) -> None:
    """Write the encoder's features of every line of FILES at the chosen layers to an .npz file.

    The file holds ``layer_<N>`` (lines x hidden, or lines x rows x cols x hidden with
    ``--pool none``) for each layer asked for, and per line ``files``, ``pages`` and ``bboxes``
    (``[x0, y0, x1, y1]`` on the page).
    """
    import numpy as np

    from inkwell.errors import Refused
    from inkwell.intake import check_upload
    from worker.features import encoder_layer_count, resolve_layer
    from worker.page_image import PageDecodeError
    from worker.pipeline import cut_page
    from worker.runtime import line_finder, load_recognizer, page_limits, quiet_libraries_off_terminal

    settings = get_settings()
    logging.basicConfig(level=logging.WARNING)
    quiet_libraries_off_terminal()
    recognizer = load_recognizer(settings, model)
    try:
        for layer in layers:
            resolve_layer(layer, encoder_layer_count(recognizer))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--layer") from None
    images, sources, pages, boxes = [], [], [], []
    for path in _progress(files, "files"):
        data = path.read_bytes()
        try:
            checked = check_upload(data, str(path), settings.upload_limits())
            for index in range(checked.page_count):
                layout = "line" if as_lines else "page"
                cut = cut_page(
                    data,
                    checked.media_type,
                    index,
                    layout,
                    page_limits(settings),
                    lambda image: line_finder().find(image),
                )
                for line in cut.lines:
                    images.append(line.image)
                    sources.append(str(path))
                    pages.append(index + 1)
                    boxes.append(list(line.bbox))
        except (Refused, PageDecodeError) as error:
            raise click.ClickException(f"{path}: {error}") from None
    found = recognizer.features(images, list(layers), pool)  # type: ignore[arg-type]
    arrays: dict[str, Any] = {f"layer_{layer}": values for layer, values in found.items()}
    np.savez(
        out,
        **arrays,
        files=np.array(sources, dtype=str),
        pages=np.array(pages, dtype=np.int32),
        bboxes=np.array(boxes, dtype=np.int32).reshape(-1, 4),
    )
    shapes = ", ".join(f"{name} {tuple(values.shape)}" for name, values in arrays.items())
    click.echo(f"{len(images)} lines from {len(files)} files: {shapes} -> {out}", err=True)


@main.group()
def model() -> None:
    """Publish a model folder to the Hugging Face Hub, or fetch one into the local cache."""


@model.command("push")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("repo_id")
@click.option("--private", is_flag=True, help="Create the repository private (an existing one keeps its visibility).")
def model_push(folder: Path, repo_id: str, private: bool) -> None:
    """Upload FOLDER (weights, processor, tokenizer, CTC head, handler.py, card) to REPO_ID as one commit."""
    from inkwell.hub import HubError, plan_push, push

    try:
        plan = plan_push(folder)
        click.echo(f"uploading {len(plan.files)} files to {repo_id}: {', '.join(plan.files)}", err=True)
        click.echo(push(folder, repo_id, private))
    except HubError as error:
        raise click.ClickException(str(error)) from None


@model.command("pull")
@click.argument("repo_id")
@click.option("--revision", default=None, help="Branch, tag or commit (default: main).")
def model_pull(repo_id: str, revision: str | None) -> None:
    """Download REPO_ID into the Hugging Face cache and print its folder.

    Afterwards ``INKWELL_MODEL=REPO_ID`` loads it from the cache, also offline (``HF_HUB_OFFLINE=1``);
    for a revision other than main, point ``INKWELL_MODEL`` at the printed folder.
    """
    from inkwell.hub import pull

    try:
        folder = pull(repo_id, revision)
    except Exception as error:  # noqa: BLE001 - huggingface_hub's errors (offline, unknown repo, no access) say why
        raise click.ClickException(f"{repo_id}: {type(error).__name__}: {error}") from None
    click.echo(str(folder))


def _progress(items, unit: str):
    """``items`` with a progress bar on standard error when it is a terminal (and there are several)."""
    from inkwell.progress import progress

    return progress(items, unit=f" {unit}", leave=False) if len(items) > 1 else items


def _database():
    from inkwell.db import Database

    settings = get_settings()
    if settings.uses_sqlite:
        from inkwell.migrate import upgrade

        upgrade(settings)  # the embedded database may not exist yet
    return Database(settings)


@main.group()
def user() -> None:
    """Reviewer accounts for the web pages."""


@user.command("create")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of asking.")
def user_create(username: str, password_stdin: bool) -> None:
    """Create a reviewer (asks for the password twice)."""
    from inkwell.accounts import AccountError, create_user

    password = (
        sys.stdin.readline().rstrip("\n")
        if password_stdin
        else click.prompt("Password", hide_input=True, confirmation_prompt=True)
    )
    try:
        with _database().session() as session:
            create_user(session, username, password)
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"user {username} created")


@user.command("list")
def user_list() -> None:
    """Every reviewer, active or disabled."""
    from sqlalchemy import select

    from inkwell.models import User

    with _database().session() as session:
        for account in session.scalars(select(User).order_by(User.username)):
            last = account.last_login_at.strftime("%Y-%m-%d %H:%M") if account.last_login_at else "never"
            click.echo(f"{account.username}\t{'active' if account.active else 'disabled'}\tlast sign-in {last}")


@user.command("disable")
@click.argument("username")
def user_disable(username: str) -> None:
    """Stop a reviewer from signing in (their open sessions stop at the next request)."""
    _set_active(username, False)


@user.command("enable")
@click.argument("username")
def user_enable(username: str) -> None:
    """Let a disabled reviewer sign in again."""
    _set_active(username, True)


def _set_active(username: str, active: bool) -> None:
    from inkwell.accounts import AccountError, set_user_active

    try:
        with _database().session() as session:
            set_user_active(session, username, active)
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"user {username} {'enabled' if active else 'disabled'}")


@main.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.argument("name")
@click.option(
    "--scopes",
    default="submit,read",
    show_default=True,
    help="Comma-separated: submit, read, review, delete (remove whole jobs).",
)
@click.option("--all-jobs", is_flag=True, help="See every job, not only the ones this token submitted.")
def token_create(name: str, scopes: str, all_jobs: bool) -> None:
    """Create a token; it is printed once and cannot be shown again."""
    from inkwell.accounts import AccountError, create_token

    try:
        with _database().session() as session:
            created = create_token(session, name, [s.strip() for s in scopes.split(",") if s.strip()], all_jobs)
            token_id, webhook_secret = created.token.id, created.token.webhook_secret
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"token {token_id} ({name}): {created.secret}")
    click.echo(f"webhook signing secret: {webhook_secret}")
    click.echo("Keep both now: the token is shown only this once.", err=True)


@token.command("list")
def token_list() -> None:
    """Tokens: id, name, scopes, state (secrets are never shown)."""
    from sqlalchemy import select

    from inkwell.models import ApiToken

    with _database().session() as session:
        for item in session.scalars(select(ApiToken).order_by(ApiToken.id)):
            state = "revoked" if item.revoked_at else "active"
            used = item.last_used_at.strftime("%Y-%m-%d %H:%M") if item.last_used_at else "never"
            click.echo(
                f"{item.id}\t{item.name}\t{item.prefix}…\t{','.join(item.scopes)}"
                f"{' +all-jobs' if item.all_jobs else ''}\t{state}\tlast used {used}"
            )


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke a token: it stops working at once."""
    from inkwell.accounts import AccountError, revoke_token

    try:
        with _database().session() as session:
            revoke_token(session, token_id)
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"token {token_id} revoked")


def _redacted(url: str) -> str:
    """The URL without its password, for logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
