"""One typed settings object, read from ``INKWELL_*`` environment variables.

The web app, the workers, the command line and Alembic all build their configuration from this
class, so a value means the same thing everywhere and a bad value stops every process at start-up
with a message naming the variable, rather than failing later inside a request or a task.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from inkwell.paths import BUNDLED_MODEL

DATABASE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")
BROKER_SCHEMES = ("redis", "rediss", "sqla+sqlite", "sqla+postgresql", "sqla+postgresql+psycopg", "amqp", "pyamqp")


class Settings(BaseSettings):
    """Every setting of Inkwell; each field ``name`` is read from ``INKWELL_NAME``."""

    model_config = SettingsConfigDict(env_prefix="INKWELL_", extra="ignore", validate_default=True)

    data_dir: Path = Field(Path("var"), description="Folder for the embedded database, broker and secrets.")
    database_url: str = Field("", description="SQLAlchemy URL; default: SQLite file data_dir/inkwell.db.")
    broker_url: str = Field("", description="Celery broker URL; default: SQLite-backed kombu transport in data_dir.")

    model: str = Field(str(BUNDLED_MODEL), description="Model folder or Hugging Face Hub id.")
    device: str = Field("auto", description="'auto' (CUDA if present), 'cpu', 'cuda' or 'cuda:N'.")
    max_new_tokens: int = Field(128, gt=0, le=1024, description="Longest text generated for one line, in tokens.")
    recognize_batch_size: int = Field(
        0,
        ge=0,
        le=1024,
        description="Lines per model call; 0 = automatic (32 on the CPU, sized to free memory on a GPU).",
    )
    attention_layer: int = Field(-1, description="Decoder layer whose cross-attention is stored (-1 = last).")
    ctc_weight: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Weight of the CTC head in joint decoding, for checkpoints that ship one; empty: the checkpoint's; "
        "0: off.",
    )
    embedding_layer: int | None = Field(
        None,
        description="Encoder layer whose mean-pooled states are stored as line and page embeddings (0 = patch "
        "embeddings, "
        "1..L = blocks, negative from the end); empty: the encoder's final output. Similar pages compare only the same "
        "layer and model.",
    )
    preprocessing: Literal["auto", "processor", "fit-pad"] = Field(
        "auto",
        description="'processor': the checkpoint's image processor; 'fit-pad': keep aspect and pad; "
        "'auto': what the checkpoint asks for (fit-pad for the bundled model).",
    )

    web_host: str = Field("127.0.0.1", description="Address the web server listens on.")
    web_port: int = Field(8000, gt=0, lt=65536, description="Port the web server listens on.")
    web_workers: int = Field(2, gt=0, le=64, description="Web server (gunicorn) worker processes.")
    web_threads: int = Field(
        16, gt=0, le=256, description="Threads of each web server process (each serves one request at a time)."
    )
    web_read_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=600,
        description="A client that sends nothing for this long while its request is read (or its answer written) is "
        "dropped.",
    )
    secret_key: SecretStr | None = Field(
        None, description="Signs sessions and CSRF tokens; default: generated into data_dir."
    )

    max_request_bytes: int = Field(100 * 2**20, gt=0, description="Largest upload request accepted, in bytes.")
    max_file_bytes: int = Field(40 * 2**20, gt=0, description="Largest single uploaded file, in bytes.")
    max_files_per_job: int = Field(100, gt=0, description="Most files in one job.")
    max_pages_per_job: int = Field(100, gt=0, description="Most pages in one job, all files' pages together.")
    max_image_pixels: int = Field(60_000_000, gt=0, description="Largest page, in pixels (decompression-bomb guard).")
    min_image_side: int = Field(8, gt=0, description="Smallest width or height of a page, in pixels.")
    pdf_dpi: int = Field(200, ge=50, le=600, description="Resolution PDF pages are rasterised at.")

    lines_flush_every: int = Field(8, gt=0, description="Pages the recognition worker gathers before one batched run.")
    lines_flush_interval: float = Field(1.0, gt=0, description="Seconds before a partial batch of pages is run anyway.")
    pages_concurrency: int = Field(2, gt=0, description="Processes of a worker serving the 'pages' queue.")
    pages_in_flight_per_job: int = Field(
        4,
        gt=0,
        description="Pages of one job on the 'pages' queue at a time: later jobs' pages queue between them (fair "
        "scheduling).",
    )
    lines_concurrency: int = Field(
        1, gt=0, description="Processes of a worker serving the 'lines' queue (one per GPU)."
    )
    task_time_limit: int = Field(900, gt=0, description="Hard limit for one task, in seconds.")
    broker_visibility_timeout: int = Field(
        3600, gt=0, description="Seconds before an unacknowledged message is redelivered."
    )
    review_threshold: float = Field(
        0.8, ge=0, le=1, description="Lines and tokens read with less confidence are flagged for review."
    )
    session_hours: float = Field(8.0, gt=0, description="A reviewer's sign-in lasts this long without activity.")
    sign_in_max_failures: int = Field(
        5, gt=0, description="Failed sign-ins for one account within the lockout window before it is locked."
    )
    sign_in_max_failures_per_address: int = Field(
        20, gt=0, description="Failed sign-ins from one address within the window before it is locked."
    )
    sign_in_lockout_seconds: int = Field(
        900, gt=0, description="Window (and longest lockout) for counting failed sign-ins, in seconds."
    )
    secure_cookies: bool = Field(
        False, description="Send session cookies over HTTPS only (set it when serving over HTTPS)."
    )
    max_page_attempts: int = Field(
        3, gt=0, description="Deliveries a page may crash a worker in before it fails (e.g. out of memory)."
    )
    stale_after_seconds: int = Field(
        600, gt=0, description="A page waiting this long since its message was sent is sent again by the sweeper."
    )
    stall_after_seconds: int = Field(
        300, gt=0, description="/readyz fails when pages have waited this long on a queue and none moved on meanwhile."
    )
    sweep_interval_seconds: int = Field(60, gt=0, description="How often the sweeper (Celery beat) runs.")
    retention_days: int = Field(
        0, ge=0, description="Delete jobs (files, images, results) this many days old; 0 keeps them."
    )
    callback_timeout_seconds: float = Field(10.0, gt=0, description="Time limit of one callback request.")
    callback_max_attempts: int = Field(
        8, gt=0, description="Callback deliveries tried (with exponential backoff) before giving up."
    )
    callback_denied_networks: str = Field(
        "169.254.0.0/16,fe80::/10,100.100.100.200/32,fd00:ec2::254/128,0.0.0.0/8,224.0.0.0/4,ff00::/8",
        description="Comma-separated networks callbacks are never sent to (link-local and cloud metadata addresses by "
        "default).",
    )
    callback_allowed_networks: str = Field(
        "",
        description="Comma-separated non-public networks callbacks may reach (internal receivers); by default only "
        "public addresses.",
    )
    retry_after_seconds: int = Field(2, gt=0, description="Retry-After sent to clients polling a running job.")
    metrics_dir: Path | None = Field(
        None,
        description="Folder where this machine's processes keep their Prometheus metrics; default: data_dir/metrics.",
    )
    metrics_port: int = Field(
        0,
        ge=0,
        lt=65536,
        description="A worker serves its processes' metrics on this port (0: none; "
        "the web server's /metrics shows them when both share a machine).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level of every process.")

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        if value and value.split("://", 1)[0] not in DATABASE_SCHEMES:
            raise ValueError(
                f"INKWELL_DATABASE_URL must start with one of {', '.join(s + '://' for s in DATABASE_SCHEMES)}"
            )
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")  # the driver we ship
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, value: str) -> str:
        if value and value.split("://", 1)[0] not in BROKER_SCHEMES:
            raise ValueError(
                f"INKWELL_BROKER_URL must start with one of {', '.join(s + '://' for s in BROKER_SCHEMES)}"
            )
        return value

    @model_validator(mode="after")
    def _embedded_defaults(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().absolute()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'inkwell.db'}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{self.data_dir / 'broker.db'}"
        if self.max_file_bytes > self.max_request_bytes:
            raise ValueError("INKWELL_MAX_FILE_BYTES cannot exceed INKWELL_MAX_REQUEST_BYTES")
        return self

    @field_validator("callback_denied_networks", "callback_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        import ipaddress

        for part in filter(None, (p.strip() for p in value.split(","))):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(f"{part!r} is not a network") from None
        return value

    def upload_limits(self):  # -> inkwell.intake.Limits
        """The limits one upload is checked against."""
        from inkwell.intake import Limits

        return Limits(
            self.max_file_bytes, self.max_image_pixels, self.max_pages_per_job, self.min_image_side, self.pdf_dpi
        )

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def ensure_data_dir(self) -> Path:
        """Create the data folder (for the embedded database and broker) if needed."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir

    def resolved_secret_key(self) -> str:
        """The configured secret, or one generated once and kept in data_dir so every process shares it."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.ensure_data_dir() / "secret_key"
        if not path.exists():
            # Web workers start together: each writes its own candidate (mkstemp: a unique name, mode
            # 0600) and links it into place, which only the first can do, so all share that one key.
            # A shared temporary name let one process rename the file another was still writing.
            handle, name = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")
            candidate = Path(name)
            try:
                with os.fdopen(handle, "w") as file:
                    file.write(secrets.token_hex(32))
                os.link(candidate, path)
            except FileExistsError:
                pass
            finally:
                candidate.unlink()
        return path.read_text().strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
