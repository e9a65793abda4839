"""The client verbs against a real `horde serve`, with scripted workers answering the jobs.

The CLI runs in-process through click's runner (its exit code, stdout and stderr are what a shell sees);
`test_entry_point_*` run the installed `horde` as a real process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import Cli, ScriptedWorker, image_answer, png_file, run_horde
from tests.e2e.conftest import HordeServer, _free_port, _horde_command

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("cli")]


def _echo(job: dict[str, object]) -> dict[str, object]:
    payload = job["payload"]
    assert isinstance(payload, dict)
    return {"generation": f"echo: {payload['prompt']}"}


def _fault(_job: dict[str, object]) -> dict[str, object]:
    return {"generation": "", "state": "faulted"}


def _request_id(stderr: str) -> str:
    found = re.search(r"request ([0-9a-f-]{36})", stderr)
    assert found, stderr
    return found.group(1)


# generate text ------------------------------------------------------------------------------------------
def test_generate_text_prints_the_text_and_progress(cli: Cli, cli_server: HordeServer, model: str) -> None:
    with ScriptedWorker(cli_server, cli.api_key, "text", _echo, model=model):
        result = cli("generate", "text", "Once upon a time", "--model", model, "--max-length", "16")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo: Once upon a time\n"
    assert re.search(r"\[#{24}\] 1/1 · done", result.stderr), result.stderr
    assert f"{model} on scripted" in result.stderr


def test_generate_text_json_prints_the_final_status(cli: Cli, cli_server: HordeServer, model: str) -> None:
    with ScriptedWorker(cli_server, cli.api_key, "text", _echo, model=model):
        result = cli("generate", "text", "Hi", "--model", model, "--n", "2", "--json", "-q")
    assert result.exit_code == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["done"] is True
    assert status["faulted"] is False
    assert [g["text"] for g in status["generations"]] == ["echo: Hi", "echo: Hi"]
    assert "[" not in result.stderr  # -q: no progress bar (a NoAvailableWorker warning may show)


def test_a_faulted_request_exits_1(cli: Cli, cli_server: HordeServer, model: str) -> None:
    with ScriptedWorker(cli_server, cli.api_key, "text", _fault, model=model):
        result = cli("generate", "text", "Hi", "--model", model, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["faulted"] is True
    assert f"request {_request_id(result.stderr)} faulted" in result.stderr


def test_a_refusal_exits_1_with_the_rc(cli: Cli) -> None:
    result = cli("generate", "text", "Hi", env={"HORDE_API_KEY": "not-a-real-key"})
    assert result.exit_code == 1
    assert "rc InvalidAPIKey, HTTP 401" in result.stderr
    assert result.stdout == ""
    as_json = cli("generate", "text", "Hi", "--json", env={"HORDE_API_KEY": "not-a-real-key"})
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout) | {"message": ""} == {
        "message": "",
        "rc": "InvalidAPIKey",
        "status": 401,
    }


def test_timeout_cancels_the_request(cli: Cli, cli_server: HordeServer, model: str) -> None:
    result = cli("generate", "text", "Hi", "--model", model, "--timeout", "1")
    assert result.exit_code == 1
    assert "not done after 1s" in result.stderr
    request_id = _request_id(result.stderr)
    assert f"request {request_id} cancelled" in result.stderr
    pop = httpx.post(
        f"{cli_server.api}/generate/text/pop",
        json={"name": "cli pop check", "models": [model]},
        headers={"apikey": cli.api_key},
    )
    assert pop.json()["id"] is None  # the cancelled request is not handed out


def test_the_anonymous_key_is_the_default(cli: Cli) -> None:
    result = cli("user", env={"HORDE_API_KEY": ""})
    assert result.exit_code == 0, result.stderr
    assert "Anonymous#0" in result.stdout


def test_flags_override_the_environment(cli: Cli) -> None:
    result = cli(
        "user", "--url", cli.url, "--api-key", cli.api_key,
        env={"HORDE_URL": f"http://127.0.0.1:{_free_port()}", "HORDE_API_KEY": "wrong"},
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "e2e_user#" in result.stdout


# usage errors and failures -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "text"], "Missing argument 'PROMPT'"),
        (["generate", "image", "a boat", "--width", "100"], "params.width: Input should be a multiple of 64"),
        (["generate", "text", "Hi", "--n", "many"], "'many' is not a valid integer"),
        (["interrogate", "no-such-file.png", "--form", "nsfw"], "cannot read no-such-file.png"),
        (["interrogate", "http://example.com/a.png", "--form", "paint"], "forms.0.name"),
        (["interrogate", "http://example.com/a.png"], "Missing option '--form'"),
        (["status", "x", "--kind", "video"], "Invalid value for '--kind'"),
    ],
)
def test_usage_errors_exit_2(cli: Cli, args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_an_unreachable_horde_exits_1(cli: Cli) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    result = cli("user", "--url", url)
    assert result.exit_code == 1
    assert f"cannot reach the horde at {url}" in result.stderr


def test_kudos_transfer(cli: Cli, cli_server: HordeServer) -> None:
    name = f"cli_friend_{uuid.uuid4().hex[:6]}"
    body = {"username": name, "oauth_id": name, "moderator": False, "trusted": False}
    friend = httpx.post(f"{cli_server.base_url}/api/v2/dev/test-user", json=body, timeout=30).json()
    done = cli("kudos", "transfer", friend["alias"], "5")
    assert done.exit_code == 0, done.stderr
    assert f"transferred 5 kudos to {friend['alias']}" in done.stdout
    unknown = cli("kudos", "transfer", "nobody#999999", "5", "--json")
    assert unknown.exit_code == 1
    assert json.loads(unknown.stdout) | {"message": ""} == {
        "message": "", "rc": "InvalidTargetUsername", "status": 400,
    }  # fmt: skip


# status, workers, models, user ---------------------------------------------------------------------------
def test_status_of_a_finished_text_request(cli: Cli, cli_server: HordeServer, model: str) -> None:
    with ScriptedWorker(cli_server, cli.api_key, "text", _echo, model=model):
        done = cli("generate", "text", "Status please", "--model", model)
    request_id = _request_id(done.stderr)
    shown = cli("status", request_id)
    assert shown.exit_code == 0, shown.stderr
    assert "1/1 · done" in shown.stdout
    assert "echo: Status please" in shown.stdout
    as_json = cli("status", request_id, "--kind", "text", "--json")
    assert json.loads(as_json.stdout)["generations"][0]["text"] == "echo: Status please"
    wrong_kind = cli("status", request_id, "--kind", "image")
    assert wrong_kind.exit_code == 1
    assert "HTTP 404" in wrong_kind.stderr


def test_status_of_an_unknown_id_exits_1(cli: Cli) -> None:
    result = cli("status", str(uuid.uuid4()))
    assert result.exit_code == 1
    assert "no text, image or alchemy request has the id" in result.stderr


def test_workers_and_models_list_a_working_worker(cli: Cli, cli_server: HordeServer, model: str) -> None:
    with ScriptedWorker(cli_server, cli.api_key, "text", _echo, model=model) as worker:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            listed = cli("workers", "--type", "text", "--json")
            if worker.name in [w["name"] for w in json.loads(listed.stdout)]:
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"{worker.name} never listed: {listed.stdout}")
        table = cli("workers", "--type", "text")
        while time.monotonic() < deadline:  # the model list is a snapshot cached for a few seconds
            models = cli("models", "--type", "text")
            if model in models.stdout:
                break
            time.sleep(0.3)
        models_json = cli("models", "--type", "text", "--json")
    assert table.exit_code == 0
    assert worker.name in table.stdout
    assert table.stdout.startswith("name")
    assert models.exit_code == 0
    assert model in models.stdout
    assert model in [m["name"] for m in json.loads(models_json.stdout)]


def test_user_shows_the_key_owner(cli: Cli) -> None:
    result = cli("user")
    assert result.exit_code == 0
    assert re.search(r"user: +e2e_user#\d+", result.stdout)
    as_json = json.loads(cli("user", "--json").stdout)
    assert as_json["username"].startswith("e2e_user#")


# images and alchemy --------------------------------------------------------------------------------------
def test_generate_image_writes_the_files(
    cli: Cli, cli_server: HordeServer, model: str, tmp_path: Path
) -> None:
    with ScriptedWorker(cli_server, cli.api_key, "image", image_answer, model=model):
        result = cli(
            "generate", "image", "a boat", "--model", model, "--n", "2", "--steps", "5", "--seed", "42",
            "--sampler", "k_euler", "--out", str(tmp_path / "out"),
        )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    paths = [Path(line) for line in result.stdout.splitlines()]
    assert len(paths) == 2
    for path in paths:
        assert path.parent == tmp_path / "out"
        assert path.suffix == ".webp"
        assert path.read_bytes()[8:12] == b"WEBP"


def test_interrogate_a_file(cli: Cli, cli_server: HordeServer, tmp_path: Path) -> None:
    def answer(form: dict[str, object]) -> dict[str, object]:
        name = str(form["form"])
        value: object = {"nsfw": False, "caption": "a red square"}.get(name, "R2")
        return {"result": {name: value}}

    forms = ["nsfw", "caption", "RealESRGAN_x4plus"]
    with ScriptedWorker(cli_server, cli.api_key, "alchemy", answer, forms=forms):
        args = ["interrogate", str(png_file(tmp_path / "red.png")), "--out", str(tmp_path / "out")]
        result = cli(*args, *[f"--form={form}" for form in forms])
    assert result.exit_code == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert lines["nsfw"] == "false"
    assert lines["caption"] == "a red square"
    upscaled = Path(lines["RealESRGAN_x4plus"])
    assert upscaled.parent == tmp_path / "out"
    assert upscaled.read_bytes()[8:12] == b"WEBP"


# the real entry point --------------------------------------------------------------------------------------
def test_entry_point_exit_codes(cli: Cli, cli_server: HordeServer, model: str) -> None:
    env = {"HORDE_URL": cli.url, "HORDE_API_KEY": cli.api_key}
    with ScriptedWorker(cli_server, cli.api_key, "text", _echo, model=model):
        ok = run_horde("generate", "text", "From a process", "--model", model, "--json", env=env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["generations"][0]["text"] == "echo: From a process"
    refused = run_horde("user", env={**env, "HORDE_API_KEY": "not-a-real-key"})
    assert refused.returncode == 1
    assert "rc " in refused.stderr
    usage = run_horde("generate", "text", env=env)
    assert usage.returncode == 2


def test_entry_point_ctrl_c_cancels_the_request(cli: Cli, cli_server: HordeServer, model: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HORDE_")}
    env.update(HORDE_URL=cli.url, HORDE_API_KEY=cli.api_key)
    process = subprocess.Popen(
        [*_horde_command(0)[:-5], "generate", "text", "Hi", "--model", model],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    seen = ""
    while "[" not in seen:  # the first progress line: the request is queued and followed
        line = process.stderr.readline()
        assert line, f"exited early: {seen}"
        seen += line
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert f"request {_request_id(seen + err)} cancelled" in err
