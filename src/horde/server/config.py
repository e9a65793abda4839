"""One settings object for the server; nothing else in the server reads the environment."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "horde"


class Settings(BaseSettings):
    """Server settings, read from `HORDE_*` environment variables.

    Durations are seconds; their defaults are the reference's values (SEMANTICS.md 3.5, ADR 0004).
    """

    model_config = SettingsConfigDict(env_prefix="HORDE_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str = ""  # empty: a SQLite file in data_dir
    redis_url: str = ""  # empty: no Redis, node-local caches only
    redis_prefix: str = "horde:"
    # the answer cache of the hot GET routes (ADR 0026): its node-local tier keeps an answer this many
    # seconds (0: the local tier is off, every lookup asks Redis); `answer_cache` off: no caching at all
    answer_cache: bool = True
    cache_local_ttl: float = Field(default=1.0, ge=0.0, le=1.0)
    public_url: str = ""  # empty: the address the server listens on
    host: str = "127.0.0.1"
    port: int = 7001
    allow_private_source_urls: bool = False
    test_apikeys: bool = False
    test_ratelimit_disabled: bool = False
    # empty: generated once, kept in the shared database (PostgreSQL) or in data_dir (SQLite)
    api_key_pepper: str = ""
    url_signing_secret: str = ""
    # S3-compatible object storage for results and sources; empty bucket: files in data_dir/objects
    s3_bucket: str = ""
    s3_endpoint: str = ""  # empty: AWS; e.g. http://minio:9000 or https://<account>.r2.cloudflarestorage.com
    s3_public_endpoint: str = ""  # the endpoint in URLs handed to clients and workers, when it differs
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_virtual_hosted: bool = False  # bucket in the host name instead of the path
    log_format: Literal["json", "console"] = "json"  # console: for a person at a terminal
    metrics: bool = True  # serve /metrics (Prometheus text format)
    scheduler_metrics_port: int = 0  # `horde scheduler` serves its task metrics on this port when set
    # user ids, or aliases like "db0#1" of which only the id counts (a username can change)
    admins: list[int | str] = Field(default_factory=list)
    # peers whose X-Forwarded-For is believed (addresses or CIDR ranges); everyone else is the client
    trusted_proxies: list[str] = Field(default_factory=list)
    horde_name: str = "horde"
    # IP reputation: a file of unsafe addresses and CIDRs, or a `module:factory` lookup of your own
    unsafe_ips_file: str = ""
    ip_reputation: str = ""
    # Client-Agent values refused on generate (403 BannedClientAgent); the default is the reference's
    banned_client_agents: list[str] = Field(default_factory=lambda: ["My-Project:v0.0.1:My-Contact"])
    # words and phrases that make names and texts profane (Profane* rcs), one a line, added to the
    # packaged list (kit/profanity_words.txt)
    profanity_words_file: str = ""
    db_pool_size: int = 20
    db_statement_cache: bool = True  # off behind PgBouncer in transaction mode
    run_scheduler: bool = True  # run the periodic sweeps inside the API process
    model_reference_image: str = ""  # path or URL of stable_diffusion.json
    model_reference_text: str = ""  # path or URL of text_db.json
    bridge_capabilities: str = ""  # path of a JSON file extending the bridge capability table
    news_file: str = ""  # empty: the packaged first item (documents/defaults/news.json)
    documents_dir: str = ""  # terms.md, privacy.md, sponsors.md; a missing one: the packaged default
    # FastAPI's OpenTelemetry instrumentation: off unless asked for, since even unconfigured it checks
    # the providers on every request (a few per cent of an empty pop)
    telemetry: bool = False
    # The hot routes (pops, submits, asyncs, status polls) answered by lean handlers in front of FastAPI
    # (ADR 0020); off: FastAPI serves them, as it serves every other route (the same answers)
    lean_hot_paths: bool = True
    # Bench only, off by default: a file the pop probe appends per-step timings to (observe/probe.py)
    pop_probe: str = ""

    # Durations and limits (SEMANTICS.md 3.5)
    request_expiry: float = 1200.0
    idempotency_key_ttl: float = 86400.0  # how long a creation's Idempotency-Key answers retries
    request_expiry_extra_slow: float = 3600.0
    text_job_ttl: float = 150.0
    image_job_ttl_min: float = 150.0
    image_job_ttl_base: float = 30.0
    alchemy_job_ttl: float = 180.0
    job_ttl_scale: float = 1.0  # multiplies every job ttl: tests shorten leases with it
    sweep_interval: float = 60.0
    worker_online_window: float = 300.0
    checkin_debounce: float = 30.0
    fault_limit: int = 3
    alchemy_fault_limit: int = 3
    snapshot_max_age: float = 1.0
    kudos_fold_interval: float = 2.0  # balances lag their postings by at most about this
    # worker rewards (SEMANTICS.md 4.5, ADR 0023): escrow above this promotes an untrusted owner (unset:
    # never, as the reference's KUDOS_TRUST_THRESHOLD), if the account is old enough and not suspicious
    kudos_trust_threshold: float | None = None
    trust_min_account_days: float = 7.0
    uptime_interval: float = 30.0  # how often check-ins are folded into uptime and its rewards
    result_retention: float = 7200.0  # stored images and sources (SEMANTICS.md 7: 120 min)
    signed_url_ttl: float = 1800.0
    webhook_tries: int = 3
    webhook_retry_delay: float = 3.0
    webhook_timeout: float = 10.0
    source_fetch_timeout: float = 2.0
    source_max_bytes: int = 5 * 1024 * 1024
    default_concurrency: int = 30
    # prompt filters (SEMANTICS.md 8, ADR 0018)
    filter_refresh_interval: float = 1.0  # a node's compiled filters lag a write elsewhere by at most this
    filter_search_timeout: float = 0.25  # one regex search of a prompt; a timeout counts as a match
    filter_probe_timeout: float = 0.1  # one probe search when a regex is written
    filter_text_prompts: bool = False  # the reference filters image prompts only
    # seconds a rate-limit counter may take in Redis before this node counts alone for a while
    redis_timeout: float = 1.0
    max_wait: float = 30.0  # longest server-side wait a client may ask for on pop and status
    # the OpenAI-compatible API (/v1): how long a call waits for its request, and chat templates by
    # model name as [regex, family] pairs tried first (families: chatml, gemma, llama3, mistral, alpaca)
    openai_timeout: float = 300.0
    chat_templates: list[tuple[str, str]] = []

    @cached_property
    def admin_ids(self) -> frozenset[int]:
        """The admins' user ids (the `#id` of an alias; the name before it is not checked)."""
        ids = set()
        for entry in self.admins:
            raw = str(entry).rsplit("#", 1)[-1]
            if raw.isdigit():
                ids.add(int(raw))
        return frozenset(ids)

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'horde.sqlite3'}"

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
