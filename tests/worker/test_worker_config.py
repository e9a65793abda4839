"""Worker configuration: YAML + env + flags, and the errors a person sees (and the exit code 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from horde.cli.main import main
from horde.worker import ConfigError, load_config

MINIMAL = "api_key: k3y\nname: test worker\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "worker.yaml"
    path.write_text(text)
    return path


def _problems(tmp_path: Path, text: str, **overrides: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text), env={}, overrides=overrides)
    return caught.value.problems


def test_minimal_file_gets_the_defaults(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, MINIMAL), env={})
    assert config.horde_url == "http://127.0.0.1:7001" and config.kinds == ["text"]
    assert config.text.backend == "llamacpp" and config.text.llamacpp.gguf is None
    assert config.worker_name("text") == "test worker" and config.threads_for("text") == 1


def test_full_file(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    text = f"""
horde_url: https://horde.example/api/
api_key: k3y
name: full worker
kinds: [text, alchemy]
threads: 3
nsfw: false
long_poll: 0
text:
  backend: llamacpp
  models: [koboldcpp/mine]
  max_length: 256
  max_context_length: 4096
  threads: 2
  llamacpp: {{gguf: {gguf}, n_ctx: 8192}}
alchemy:
  forms: [nsfw, RealESRGAN_x4plus]
  max_tiles: 16
"""
    config = load_config(_write(tmp_path, text), env={})
    assert config.horde_url == "https://horde.example/api"
    assert config.text.llamacpp.gguf == gguf and config.text.llamacpp.n_ctx == 8192
    assert config.threads_for("text") == 2 and config.threads_for("alchemy") == 3
    assert config.worker_name("text") == "full worker (text)"  # names are unique across kinds
    assert config.alchemy.forms == ["nsfw", "RealESRGAN_x4plus"]


def test_env_overrides_file_and_flags_override_env(tmp_path: Path) -> None:
    env = {"HORDE_URL": "http://env.example", "HORDE_API_KEY": "from-env", "HORDE_WORKER_NAME": "env worker"}
    config = load_config(_write(tmp_path, MINIMAL), env=env, overrides={"name": "flag worker"})
    assert config.horde_url == "http://env.example" and config.api_key == "from-env"
    assert config.name == "flag worker"


def test_flags_alone_are_enough() -> None:
    overrides = {
        "api_key": "k",
        "name": "flag worker",
        "text.backend": "openai",
        "text.openai.url": "http://x:1/",
    }
    config = load_config(None, env={}, overrides=overrides)
    assert config.text.openai is not None and config.text.openai.url == "http://x:1"


def test_unknown_keys_are_named(tmp_path: Path) -> None:
    problems = _problems(tmp_path, MINIMAL + "colour: blue\ntext:\n  temprature: 1\n")
    assert "colour: unknown key" in problems and "text.temprature: unknown key" in problems


def test_wrong_types_are_named_and_not_coerced(tmp_path: Path) -> None:
    problems = _problems(tmp_path, MINIMAL + "threads: '2'\nnsfw: 'yes'\ntext:\n  max_length: 99999\n")
    assert any(p.startswith("threads: ") and "integer" in p for p in problems)
    assert any(p.startswith("nsfw: ") and "boolean" in p for p in problems)
    assert any(p.startswith("text.max_length: ") for p in problems)


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    problems = _problems(tmp_path, MINIMAL + f"text:\n  llamacpp:\n    gguf: {tmp_path / 'nope.gguf'}\n")
    assert len(problems) == 1 and problems[0].startswith("text.llamacpp.gguf: ")
    assert "nope.gguf" in problems[0]


def test_required_and_cross_field_problems(tmp_path: Path) -> None:
    assert _problems(tmp_path, "name: a worker\n") == ["api_key: required"]
    problems = _problems(tmp_path, MINIMAL + "text:\n  backend: openai\n")
    assert problems == ["text: backend 'openai' needs an 'openai' section with a 'url'"]
    problems = _problems(tmp_path, MINIMAL + "kinds: [image]\n")
    assert problems == ["image.backend: name an image backend to serve image jobs"]
    assert _problems(tmp_path, MINIMAL + "kinds: [text, text]\n") == ["kinds: each kind may be listed once"]
    assert _problems(tmp_path, MINIMAL + "horde_url: horde.example\n")[0].startswith(
        "horde_url: must be an http"
    )


def test_image_backend_settings(tmp_path: Path) -> None:
    assert _problems(tmp_path, MINIMAL + "kinds: [image]\nimage:\n  backend: comfy\n")[0].startswith(
        "image.backend: Input should be 'diffusers'"
    )
    problems = _problems(tmp_path, MINIMAL + "kinds: [image]\nimage:\n  backend: diffusers\n")
    assert problems == ["image: backend 'diffusers' needs a 'diffusers' section with a 'checkpoint'"]
    missing = tmp_path / "sd15.safetensors"
    text = MINIMAL + f"kinds: [image]\nimage:\n  backend: diffusers\n  diffusers: {{checkpoint: {missing}}}\n"
    assert _problems(tmp_path, text) == [f"image.diffusers.checkpoint: path does not exist (got '{missing}')"]
    missing.write_bytes(b"weights")
    config = load_config(_write(tmp_path, text), env={})
    assert config.image.diffusers is not None and config.image.diffusers.checkpoint == missing


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml", env={})
    assert "not valid YAML" in _problems(tmp_path, "name: [unclosed\n")[0]
    assert "must be a mapping" in _problems(tmp_path, "- a\n- b\n")[0]


def test_cli_exits_2_with_the_field_named(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL + "threads: many\n")
    result = CliRunner().invoke(main, ["worker", "--config", str(path)], env={"HORDE_API_KEY": ""})
    assert result.exit_code == 2
    assert "threads: Input should be a valid integer" in result.output


def test_cli_missing_gguf_flag_exits_2(tmp_path: Path) -> None:
    args = ["worker", "--api-key", "k", "--name", "cli worker", "--gguf", str(tmp_path / "x.gguf")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "text.llamacpp.gguf" in result.output


def test_cli_check_prints_the_config_without_secrets() -> None:
    args = [
        "worker",
        "--api-key",
        "s3cret",
        "--name",
        "cli worker",
        "--openai-url",
        "http://127.0.0.1:1",
        "--check",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert '"backend": "openai"' in result.output and "s3cret" not in result.output
