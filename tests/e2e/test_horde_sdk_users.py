"""horde-sdk (strict mode: its models forbid unknown keys) drives the users endpoints of the real server:
find_user, the users page, one user's details, PUT /users/{id} by a moderator and by the user, a
refused field, DELETE /users/{id} and the undelete (SEMANTICS.md 1.5).

Like tests/e2e/test_horde_sdk.py, the horde-sdk half runs in a subprocess (this file run as a script):
horde-sdk reads `AI_HORDE_URL` and `TESTS_ONGOING` at import time, and must never reach the network.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.contract.swagger import check_body, requires_swagger

if TYPE_CHECKING:
    from tests.e2e.conftest import HordeServer

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-horde-server"), requires_swagger]

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 180.0


def _user(server: HordeServer, name: str, **fields: Any) -> dict[str, Any]:
    import httpx

    body = {"username": name, "oauth_id": f"sdk_users_{name}", "moderator": False, "trusted": False, **fields}
    response = httpx.post(f"{server.api}/dev/test-user", json=body, timeout=30)
    assert response.status_code in (200, 201), response.text
    made: dict[str, Any] = response.json()
    return made


@pytest.mark.parametrize("horde_server", ["sqlite", "postgresql"], indirect=True)
def test_users_through_horde_sdk(horde_server: HordeServer, tmp_path: Path) -> None:
    plain = _user(horde_server, "sdk_plain")
    mod = _user(horde_server, "sdk_mod", moderator=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AI_HORDE", "HORDE_", "TESTS_ONGOING"))}
    env.update(
        AI_HORDE_URL=f"{horde_server.base_url}/api/", HORDE_MODEL_REFERENCE_OFFLINE="1", TESTS_ONGOING="1",
        PYTHONPATH=str(REPO), E2E_PLAIN=json.dumps(plain), E2E_MOD=json.dumps(mod),
    )  # fmt: skip
    report_path = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, __file__, str(report_path)], env=env, cwd=tmp_path, capture_output=True,
        timeout=RUN_TIMEOUT, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    output = (done.stdout + done.stderr).decode(errors="replace")[-5000:]
    assert report_path.is_file(), f"no report (exit {done.returncode}):\n{output}"
    report = json.loads(report_path.read_text())
    assert report["error"] is None, f"{report['error']}\n--- output ---\n{output}"
    steps = report["steps"]
    uid, alias = int(plain["user_id"]), plain["alias"]
    assert steps["find_user"]["username"] == alias and steps["find_user"]["id"] == uid
    assert steps["details"]["username"] == alias and "contact" not in steps["details"]
    assert alias in steps["page"]
    assert steps["by_mod"] == {"concurrency": 40, "trusted": True, "admin_comment": "seen by horde-sdk"}
    assert steps["by_self"] == {"contact": "sdk@example.org", "public_workers": True}
    assert steps["refused"] == {"rc": "NotModerator"}
    assert steps["deleted"]["message"]
    assert steps["deleted_key"] == {"rc": "DeletedUser"}
    assert steps["undeleted"] == {"undeleted": True}
    assert steps["cannot_delete_mod"] == {"rc": "CannotDeleteMod"}
    assert steps["after"]["concurrency"] == 40 and steps["after"]["deleted"] is False
    for name, body in report["bodies"]:
        name = {"_ANONYMOUS_MODEL": "UserDetails[]"}.get(name, name)  # horde-sdk's name for the page
        assert check_body(name, body) == [], (name, body)


# ---------------------------------------------------------------------------------------------------
# The subprocess: horde-sdk imported only here.


def _fields(model: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(exclude_none=True, exclude_unset=True, by_alias=True)
    return dumped


async def _run(report: dict[str, Any]) -> None:
    from horde_sdk import create_aiohttp_client_session
    from horde_sdk.ai_horde_api.ai_horde_clients import AIHordeAPIAsyncManualClient
    from horde_sdk.ai_horde_api.apimodels import (
        DeleteUserRequest,
        FindUserRequest,
        ListUsersDetailsRequest,
        ModifyUserRequest,
        SingleUserDetailsRequest,
    )
    from horde_sdk.generic_api.apimodels import RequestErrorResponse

    plain, mod = json.loads(os.environ["E2E_PLAIN"]), json.loads(os.environ["E2E_MOD"])
    steps: dict[str, Any] = report["steps"]
    async with create_aiohttp_client_session() as session:
        client = AIHordeAPIAsyncManualClient(session)

        async def call(name: str, request: Any, *, refused: bool = False) -> Any:
            response = await client.submit_request(request, request.get_default_success_response_type())
            if isinstance(response, RequestErrorResponse):
                if not refused:
                    raise RuntimeError(f"{name}: {response.message} ({response.rc})")
                return {"rc": response.rc}
            report["bodies"].append([response.get_api_model_name(), _fields(response)])
            return response

        found = await call("find_user", FindUserRequest(apikey=plain["api_key"]))
        steps["find_user"] = {"username": found.username, "id": found.id_}
        details = await call("details", SingleUserDetailsRequest(user_id=plain["user_id"]))
        steps["details"] = _fields(details) | {"username": details.username}
        page = await call("page", ListUsersDetailsRequest(page=1, sort="age"))
        steps["page"] = [user.username for user in page.root]
        changed = await call(
            "by_mod",
            ModifyUserRequest(
                apikey=mod["api_key"], user_id=plain["user_id"], concurrency=40, trusted=True,
                admin_comment="seen by horde-sdk",
            ),
        )  # fmt: skip
        steps["by_mod"] = _fields(changed)
        own = ModifyUserRequest(
            apikey=plain["api_key"], user_id=plain["user_id"], contact="sdk@example.org", public_workers=True
        )
        steps["by_self"] = _fields(await call("by_self", own))
        raise_own = ModifyUserRequest(apikey=plain["api_key"], user_id=plain["user_id"], concurrency=500)
        steps["refused"] = await call("refused", raise_own, refused=True)
        deleted = await call("deleted", DeleteUserRequest(apikey=plain["api_key"], user_id=plain["user_id"]))
        steps["deleted"] = {"message": deleted.message}
        steps["deleted_key"] = await call(
            "deleted_key", FindUserRequest(apikey=plain["api_key"]), refused=True
        )
        undelete = ModifyUserRequest(apikey=plain["api_key"], user_id=plain["user_id"], undelete=True)
        steps["undeleted"] = _fields(await call("undeleted", undelete))
        no_mod = DeleteUserRequest(apikey=mod["api_key"], user_id=mod["user_id"])
        steps["cannot_delete_mod"] = await call("cannot_delete_mod", no_mod, refused=True)
        after = await call("after", FindUserRequest(apikey=plain["api_key"]))
        steps["after"] = {"concurrency": after.concurrency, "deleted": after.deleted}


def main() -> int:
    report_path = Path(sys.argv[1])
    report: dict[str, Any] = {"steps": {}, "bodies": [], "error": None}
    try:
        asyncio.run(asyncio.wait_for(_run(report), RUN_TIMEOUT - 30))
    except BaseException:  # report whatever broke, then fail the run
        report["error"] = traceback.format_exc()
    report_path.write_text(json.dumps(report, default=str, indent=1))
    return 1 if report["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
