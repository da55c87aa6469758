"""Settings of the gateway and of the simulator, as one pydantic-settings tree.

Every value comes from the environment (prefix ``GATEWAY_``, nested groups joined with ``__``,
e.g. ``GATEWAY_DATABASE__URL``) or from a ``.env`` file. Nothing is instantiated at import:
``gateway.cli`` builds one ``Settings`` and passes it (or a group of it) down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

APP_NAME = "mj-gateway"


def default_data_dir() -> Path:
    """Where the embedded PostgreSQL and Redis keep their files when no URL is configured."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_migrations_dir() -> Path:
    """``migrations/`` beside the ``gateway`` package, as in a checkout."""
    return Path(__file__).resolve().parent.parent / "migrations"


class DatabaseSettings(BaseModel):
    url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL; unset = a private embedded PostgreSQL in the data dir",
    )
    pool_min_size: int = Field(default=2, ge=0)
    pool_max_size: int = Field(default=20, ge=1)
    command_timeout_s: float = Field(default=10.0, gt=0)


class RedisSettings(BaseModel):
    url: SecretStr | None = Field(
        default=None, description="Redis URL; unset = a private embedded Redis in the data dir"
    )
    key_prefix: str = Field(default="gw:", description="prefix of every key the gateway writes")


class ServerSettings(BaseModel):
    metrics_token: SecretStr | None = Field(
        default=None, description="if set, /metrics wants Authorization: Bearer <this>"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    public_base_url: str | None = Field(
        default=None,
        description="absolute URL clients reach the gateway at; unset = http://host:port",
    )
    cors_origins: list[str] = Field(
        default_factory=lambda: ["*"],
        description="origins whose pages may call the API and read its images (a JSON list;"
        ' ["*"] = any, without credentials; [] = no CORS)',
    )
    max_header_bytes: int = Field(
        default=32 * 1024, ge=1024, description="a longer request head (line and headers) is 431"
    )
    max_headers: int = Field(default=100, ge=10, description="more request headers are 431")
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="a request head not received in this time is 408"
    )
    keep_alive_s: int = Field(
        default=75,
        ge=1,
        description="an idle connection is closed after this long; keep it above the idle timeout"
        " of a proxy or load balancer in front, which may otherwise send a request on a"
        " connection just as the gateway closes it (a 502)",
    )


class AdminSettings(BaseModel):
    tokens: list[SecretStr] = Field(
        default_factory=list,
        description='bearer tokens of the admin API, a JSON list (["..."]); none = API closed',
    )


class RelaySettings(BaseModel):
    secret_key: SecretStr | None = Field(
        default=None,
        description="signs image URLs; unset = a random key kept in the data dir (one host only)",
    )
    sealing_key: SecretStr | None = Field(
        default=None,
        description="seals channel secrets at rest; required with an external database (unset"
        " with the embedded one = a random key kept in the data dir)",
    )
    sealing_old_keys: list[SecretStr] = Field(
        default_factory=list,
        description="previous sealing keys, a JSON list: secrets sealed under them still open",
    )
    image_url_ttl_s: int = Field(default=86_400, ge=60, description="lifetime of image URLs")
    queued_passthrough: bool = Field(
        default=False, description="answer code 22 (not 1) when the upstream queued the task"
    )
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    ended_tasks_cache_mb: float = Field(
        default=32.0, ge=0, description="fetch answers of ended tasks kept per process; 0 = none"
    )
    auth_cache_ttl_s: float = Field(default=5.0, ge=0, description="API key cache lifetime")
    webhook_allow_private: bool = Field(
        default=False,
        description="deliver webhooks to private, loopback and link-local addresses too",
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0, description="one delivery attempt")
    webhook_retry_for_s: float = Field(
        default=86_400.0, gt=0, description="how long a failing webhook is retried"
    )
    webhook_backoff_s: float = Field(
        default=1.0, gt=0, description="first retry delay; doubles per attempt up to 10 min"
    )
    webhook_poll_s: float = Field(default=0.5, gt=0, description="outbox check when idle")
    price_cache_s: float = Field(
        default=5.0, ge=0, description="how long a process keeps the price book before rereading"
    )
    hold_deadline_s: float = Field(
        default=600.0, gt=0, description="an unresolved hold is swept after this"
    )
    finished_holds_keep_days: float = Field(
        default=7.0,
        ge=0,
        description="holds of ended tasks are deleted this long after they were resolved; the "
        "ledger keeps every hold's amount and outcome",
    )
    archive_tasks_after_days: float | None = Field(
        default=None,
        ge=1,
        description="ended tasks submitted longer ago than this are moved to tasks_archive (the"
        " API no longer shows them; the ledger keeps them); unset = never",
    )
    poll_interval_s: float = Field(
        default=2.0, gt=0, description="how often a poll round starts; it spreads its calls over it"
    )
    poll_batch_size: int = Field(
        default=100,
        ge=1,
        le=500,
        description="ids per list call at most; a light round asks in smaller batches (down to "
        "10), up to 40 calls to a channel",
    )
    poll_max_tasks: int = Field(
        default=50_000,
        ge=1,
        description="open tasks one poll round asks about at most; when more are open, the "
        "next rounds go on from where the last stopped",
    )
    task_timeout_s: float = Field(
        default=1800.0, gt=0, description="a task still open this long after submit fails"
    )
    task_timeouts_s: dict[str, float] = Field(
        default_factory=dict,
        description='per task action, e.g. {"UPSCALE": 600}: overrides task_timeout_s',
    )
    poll_young_s: float = Field(
        default=120.0, ge=0, description="a task this young is polled every round"
    )
    poll_waiting_every: int = Field(
        default=5,
        ge=1,
        description="older tasks still queued upstream (or awaiting a modal) are polled every "
        "this many rounds; running ones every round",
    )
    forgotten_after_polls: int = Field(
        default=5,
        ge=1,
        description="polls in a row a channel may lack a task before it fails",
    )


class UpstreamSettings(BaseModel):
    callback_base_url: str | None = Field(
        default=None,
        description="the gateway's URL as upstreams reach it: set, every submit asks its "
        "channel to call back on each change of the task; unset, the poller alone tracks tasks",
    )
    connect_timeout_s: float = Field(default=3.0, gt=0)
    submit_timeout_s: float = Field(default=30.0, gt=0, description="whole submit call")
    fetch_timeout_s: float = Field(default=10.0, gt=0, description="polls and image-seed")
    max_connections: int = Field(default=256, ge=1, description="open upstream connections")
    max_attempts: int = Field(default=3, ge=1, description="channels tried for one submit")
    cooldown_s: float = Field(
        default=30.0,
        ge=0,
        description="how long a channel rests after N failures, a no-account answer or a refused "
        "secret; each failed probe starts it again",
    )
    failures_to_cool: int = Field(
        default=3,
        ge=1,
        description="failed attempts in a row (submits or polls) that rest a channel",
    )
    failure_streak_ttl_s: float = Field(
        default=300.0, gt=0, description="a failure streak is forgotten this long after its last"
    )
    probe_interval_s: float = Field(
        default=5.0, gt=0, description="pause between two probes of a resting channel"
    )
    probe_timeout_s: float = Field(default=5.0, gt=0, description="one probe call")
    routing_seed: int | None = Field(
        default=None, description="seed of the weighted channel choice, for repeatable runs"
    )


class LogSettings(BaseModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto = console on a terminal, JSON otherwise"
    )


class SimulatorFaults(BaseModel):
    """Probability (0..1) that each fault hits a request or a task, chosen independently.

    Submit faults are drawn once per submit request, in the order listed; lifecycle faults are
    drawn once per task when it is created. A prompt marker ``[[sim:NAME]]`` forces one.
    """

    http_401: float = Field(default=0.0, ge=0, le=1)
    http_500: float = Field(default=0.0, ge=0, le=1)
    not_json: float = Field(default=0.0, ge=0, le=1)
    drop_connection: float = Field(default=0.0, ge=0, le=1)
    slow: float = Field(default=0.0, ge=0, le=1)
    banned: float = Field(default=0.0, ge=0, le=1)
    no_account: float = Field(default=0.0, ge=0, le=1)
    queue_full: float = Field(default=0.0, ge=0, le=1)
    system_error: float = Field(default=0.0, ge=0, le=1)
    fail_banned: float = Field(default=0.0, ge=0, le=1)
    fail_invalid: float = Field(default=0.0, ge=0, le=1)
    stall: float = Field(default=0.0, ge=0, le=1)
    forget: float = Field(default=0.0, ge=0, le=1)
    slow_answer_s: float = Field(default=3.0, ge=0, description="delay of a slow answer, unscaled")


class SimulatorSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=0, le=65535)
    secret: SecretStr | None = Field(
        default=None, description="mj-api-secret the simulator demands; unset = no check"
    )
    public_base_url: str | None = Field(
        default=None, description="base of image URLs it hands out; unset = http://host:port"
    )
    speed_factor: float = Field(
        default=1.0, gt=0, description="1 = real Midjourney pace, 1000 = a test"
    )
    flavour: Literal["plus", "open-source", "trueai"] = Field(
        default="plus",
        description="which midjourney-proxy it is (UPSTREAM.md, Flavours): open-source lacks"
        " action, modal, shorten, upload, face swap, image-seed, cancel and the mode prefixes;"
        " trueai lacks change and simple-change and answers 204 for an unknown task",
    )
    accounts: int = Field(default=2, ge=0, description="Discord accounts it pretends to drive")
    core_size: int = Field(default=3, ge=1, description="tasks running at once per account")
    queue_size: int = Field(default=10, ge=0, description="tasks waiting per account")
    remix: bool = Field(default=False, description="accounts in remix mode (modal on V/R/pan)")
    task_timeout_s: float = Field(default=300.0, gt=0, description="unscaled task timeout")
    image_size_px: int = Field(default=512, ge=64, le=2048, description="side of a grid image")
    attachment_ttl_s: float | None = Field(
        default=None,
        gt=0,
        description="set = picture URLs expire after this many (real) seconds, as Discord's do",
    )
    seed: int | None = Field(default=None, description="random seed, for repeatable runs")
    faults: SimulatorFaults = Field(default_factory=SimulatorFaults)


class S3Settings(BaseModel):
    """An S3-compatible object store (AWS S3, MinIO, R2, ...); ``bucket`` set = use it."""

    endpoint_url: str | None = Field(default=None, description="unset = AWS's own endpoint")
    bucket: str | None = Field(default=None, description="set = keep media in this bucket")
    region: str = "us-east-1"
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    path_style: bool = Field(default=False, description="bucket in the path, not the host name")
    prefix: str = Field(default="", description="put before every object key")


class MediaSettings(BaseModel):
    """Where results are kept (``gateway.media``): the data dir's ``media/`` folder unless S3 is
    configured."""

    keep: bool = Field(default=True, description="false = results are only streamed upstream")
    dir: Path | None = Field(default=None, description="unset = <data dir>/media")
    s3: S3Settings = Field(default_factory=S3Settings)
    public_base_url: str | None = Field(
        default=None,
        description="set = stored media are linked at <this>/<key> (a CDN in front of the"
        " folder or bucket) instead of at the gateway's signed URLs; 'presigned' = at"
        " presigned URLs of the S3 bucket",
    )
    max_bytes: int = Field(default=50_000_000, ge=1, description="largest result copied")
    retention_days: float | None = Field(default=None, gt=0, description="unset = keep")
    copies_at_once: int = Field(default=4, ge=1, le=64)
    max_attempts: int = Field(default=8, ge=1, description="downloads tried before giving up")
    retry_s: float = Field(default=30.0, gt=0, description="first pause, doubled per attempt")
    claim_s: float = Field(default=300.0, gt=0, description="one copy's lease")
    copy_every_s: float = Field(default=1.0, gt=0, description="pause between rounds of copies")


class ConsoleSettings(BaseModel):
    """The web console at ``/console`` (``gateway.console``)."""

    enabled: bool = Field(default=True, description="false = no /console pages")
    session_idle_s: int = Field(default=7200, ge=60, description="a session idle this long ends")
    session_max_s: int = Field(default=43_200, ge=60, description="and this long after sign-in")
    invitation_ttl_s: int = Field(default=259_200, ge=60, description="an invitation's lifetime")
    sign_in_attempts: int = Field(
        default=5, ge=1, description="wrong passwords a minute, per account and per address"
    )
    max_keys: int = Field(default=20, ge=1, description="API keys a customer may hold at once")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    migrations_dir: Path = Field(default_factory=default_migrations_dir)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    relay: RelaySettings = Field(default_factory=RelaySettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    upstream: UpstreamSettings = Field(default_factory=UpstreamSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)

    @model_validator(mode="after")
    def _holds_outlive_submits(self) -> Settings:
        upstream = self.upstream
        longest_submit_s = upstream.max_attempts * (
            upstream.connect_timeout_s + upstream.submit_timeout_s
        )
        if self.relay.hold_deadline_s <= longest_submit_s:
            raise ValueError(
                f"relay.hold_deadline_s must exceed the longest submit ({longest_submit_s:g} s:"
                " upstream.max_attempts x (connect_timeout_s + submit_timeout_s))"
            )
        return self
