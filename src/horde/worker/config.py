"""The worker's configuration: a YAML file, then `HORDE_*` environment variables, then command-line flags.

The schema is strict: an unknown key, a wrong type or a model file that does not exist is refused with
a message naming the field (`text.llamacpp.gguf: ...`), and `horde worker` exits with code 2. Relative
paths are relative to the working directory. See docs/worker.md for every key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, FilePath, ValidationError, model_validator

from horde.contract import limits
from horde.contract.alchemy import AlchemyForm

__all__ = [
    "ENV_KEYS",
    "AlchemyConfig",
    "ConfigError",
    "DiffusersConfig",
    "ImageConfig",
    "Kind",
    "KoboldConfig",
    "LlamaCppConfig",
    "OpenAIConfig",
    "TextConfig",
    "WorkerConfig",
    "load_config",
]

Kind = Literal["text", "image", "alchemy"]

ENV_KEYS: Mapping[str, str] = {
    "HORDE_URL": "horde_url",
    "HORDE_API_KEY": "api_key",
    "HORDE_WORKER_NAME": "name",
}
"""Environment variables the worker reads, and the key each one sets."""


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


Url = Annotated[str, AfterValidator(_http_url)]
AnyPath = Annotated[Path, Field(strict=False)]
ExistingFile = Annotated[FilePath, Field(strict=False)]


def _exists(path: Path) -> Path:
    if not path.exists():
        raise ValueError("path does not exist")
    return path


ExistingPath = Annotated[Path, Field(strict=False), AfterValidator(_exists)]
Threads = Annotated[int, Field(ge=1, le=limits.MAX_THREADS)]
ModelName = Annotated[str, Field(min_length=3, max_length=255)]
Seconds = Annotated[float, Field(strict=False, gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LlamaCppConfig(_Section):
    """A GGUF model run in-process; no `gguf` means the bundled Gemma 3 270M."""

    gguf: ExistingFile | None = None
    n_ctx: int = Field(default=4096, ge=256)
    n_threads: int | None = Field(default=None, ge=1)


class OpenAIConfig(_Section):
    """An OpenAI-compatible completions server (llama.cpp server, vLLM, Ollama, TabbyAPI)."""

    url: Url
    model: str | None = None  # the server's model id; default: the first it lists
    api_key: str | None = None
    timeout: Seconds = 300.0


class KoboldConfig(_Section):
    """A KoboldAI-compatible server (KoboldCpp)."""

    url: Url
    timeout: Seconds = 300.0


class TextConfig(_Section):
    """Serving text jobs."""

    name: str | None = Field(default=None, min_length=5, max_length=100)
    backend: Literal["llamacpp", "openai", "kobold"] = "llamacpp"
    models: list[ModelName] = Field(default_factory=list)  # names to advertise; default: the backend's
    max_length: int = Field(default=limits.DEFAULT_WORKER_MAX_LENGTH, ge=16, le=limits.MAX_TEXT_LENGTH)
    max_context_length: int = Field(default=limits.DEFAULT_WORKER_MAX_CONTEXT_LENGTH, ge=80)
    threads: Threads | None = None
    llamacpp: LlamaCppConfig = Field(default_factory=LlamaCppConfig)
    openai: OpenAIConfig | None = None
    kobold: KoboldConfig | None = None

    @model_validator(mode="after")
    def _backend_settings(self) -> TextConfig:
        if self.backend == "openai" and self.openai is None:
            raise ValueError("backend 'openai' needs an 'openai' section with a 'url'")
        if self.backend == "kobold" and self.kobold is None:
            raise ValueError("backend 'kobold' needs a 'kobold' section with a 'url'")
        if self.backend == "llamacpp" and len(self.models) > 1:
            raise ValueError("backend 'llamacpp' serves one model: give at most one name in 'models'")
        return self


class DiffusersConfig(_Section):
    """A Stable Diffusion 1.5 / SDXL checkpoint run with diffusers (the `image` extra)."""

    checkpoint: ExistingPath  # a diffusers folder or a single .safetensors/.ckpt file
    kind: Literal["auto", "sd15", "sdxl"] = "auto"
    config: ExistingPath | None = None  # a local diffusers folder with the pipeline configs of a single file
    device: str | None = None  # default: cuda when available, else cpu
    threads: int | None = Field(default=None, ge=1)


class ImageConfig(_Section):
    """Serving image jobs."""

    name: str | None = Field(default=None, min_length=5, max_length=100)
    backend: Literal["diffusers"] | None = None
    diffusers: DiffusersConfig | None = None
    models: list[ModelName] = Field(default_factory=list)  # names to advertise; default: the checkpoint's
    max_pixels: int = Field(default=limits.DEFAULT_MAX_PIXELS, ge=64 * 64)
    max_batch: int = Field(default=1, ge=1, le=limits.MAX_POP_AMOUNT)
    threads: Threads | None = None
    blacklist: list[str] = Field(default_factory=list, max_length=limits.MAX_WORKER_BLACKLIST)
    allow_img2img: bool = True
    allow_painting: bool = False
    allow_post_processing: bool = False
    allow_controlnet: bool = False
    allow_sdxl_controlnet: bool = False
    allow_lora: bool = False
    limit_max_steps: bool = False

    @model_validator(mode="after")
    def _backend_settings(self) -> ImageConfig:
        if self.backend == "diffusers" and self.diffusers is None:
            raise ValueError("backend 'diffusers' needs a 'diffusers' section with a 'checkpoint'")
        return self


class AlchemyConfig(_Section):
    """Serving alchemy forms; no `forms` means every form an installed backend can run."""

    name: str | None = Field(default=None, min_length=5, max_length=100)
    forms: list[AlchemyForm] | None = None
    max_tiles: int = Field(default=limits.DEFAULT_MAX_TILES, ge=1, le=limits.MAX_TILES)
    threads: Annotated[int, Field(ge=1, le=limits.MAX_ALCHEMY_THREADS)] | None = None
    ttl: Seconds = 180.0  # an alchemy pop carries no ttl; the reference's form lease is 3 minutes
    nsfw_threshold: float = Field(default=0.5, strict=False, ge=0, le=1)
    approximate_x2plus: bool = False


class WorkerConfig(_Section):
    """The whole configuration of one `horde worker` process."""

    horde_url: Url = "http://127.0.0.1:7001"
    api_key: str = Field(min_length=1)
    name: str = Field(min_length=limits.MIN_WORKER_NAME_CHARS, max_length=limits.MAX_WORKER_NAME_CHARS)
    kinds: list[Kind] = Field(default_factory=lambda: list[Kind](["text"]), min_length=1)
    threads: Threads = 1
    nsfw: bool = True
    priority_usernames: list[str] = Field(default_factory=list)
    require_upfront_kudos: bool = False
    allow_unsafe_ipaddr: bool = True
    extra_slow_worker: bool = False
    data_dir: AnyPath | None = None
    long_poll: float = Field(default=20.0, strict=False, ge=0, le=60)
    ttl_margin: float = Field(default=2.0, strict=False, ge=0)
    shutdown_timeout: float | None = Field(default=None, strict=False, ge=0)
    max_backoff: Seconds = 60.0  # longest wait after errors
    idle_backoff: Seconds = 5.0  # longest wait between empty pops when the horde does not long-poll
    text: TextConfig = Field(default_factory=TextConfig)
    image: ImageConfig = Field(default_factory=ImageConfig)
    alchemy: AlchemyConfig = Field(default_factory=AlchemyConfig)

    @model_validator(mode="after")
    def _kinds(self) -> WorkerConfig:
        if len(set(self.kinds)) != len(self.kinds):
            raise ValueError("kinds: each kind may be listed once")
        if "image" in self.kinds and not self.image.backend:
            raise ValueError("image.backend: name an image backend to serve image jobs")
        return self

    def worker_name(self, kind: Kind) -> str:
        """The name this kind's worker registers under (names are unique across kinds on a horde)."""
        section: TextConfig | ImageConfig | AlchemyConfig = getattr(self, kind)
        if section.name:
            return section.name
        return self.name if len(self.kinds) == 1 else f"{self.name} ({kind})"

    def threads_for(self, kind: Kind) -> int:
        section: TextConfig | ImageConfig | AlchemyConfig = getattr(self, kind)
        return section.threads or self.threads


class ConfigError(Exception):
    """The configuration is unusable; ``problems`` lists each one as ``field: reason``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid worker configuration:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


def load_config(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> WorkerConfig:
    """Read ``path`` (YAML), apply ``env`` (see `ENV_KEYS`) and ``overrides`` (dotted keys), validate."""
    data = _read_yaml(path) if path is not None else {}
    for var, key in ENV_KEYS.items():
        if env and env.get(var):
            _set(data, key, env[var])
    for key, value in (overrides or {}).items():
        _set(data, key, value)
    try:
        return WorkerConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_describe(error) for error in exc.errors()]) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the configuration file ({exc.strerror or exc})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: the top level must be a mapping of keys to values"])
    return data


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[last] = value


def _describe(error: Any) -> str:
    field = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required"
    elif isinstance(error.get("input"), str | int | float | Path):  # echo scalars, not whole sections
        message = f"{message} (got {str(error['input'])!r})"
    return f"{field}: {message}" if field else message  # top-level checks name their fields themselves
