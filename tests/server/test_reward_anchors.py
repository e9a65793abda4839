"""Every tax, upfront and reward anchor of SEMANTICS.md 4.4-4.5: the reference's value, ours, and our
deviation where there is one (ADR 0023). Pure functions: no I/O.

| anchor                                                  | reference | ours  | deviation                 |
| activation tax, image request without a style           | 3         | 1     | -2 (its None-vs-False bug) |
| activation tax, text request                            | 1         | 1     | none                      |
| activation tax, 2 extra source images                   | 13        | 11    | -2 (the same bug)         |
| activation tax, someone else's style                    | 3         | 3     | none (2 to the owner)     |
| bridge: official at latest version / older / other      | 1 / .9 / .75 | same | ours always counts latest |
| job reward of an untrusted owner: balance / escrow      | 50 / 50 % | same  | odd hundredth to balance  |
| uptime reward: untrusted owner escrowed, alchemist not  | yes / no  | same  | none                      |
| uptime accrual: paid per 600 s, fresh after > 300 s gap | yes       | same  | check-ins, not each pop   |
| free image side, text length, downgrade                 | 4.4       | same  | none                      |
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from horde.server.kudos import pricing, rewards, taxes
from horde.server.workers.capabilities import OUR_BRIDGE, load_table
from horde.server.workers.uptime import Accrual

TABLE = load_table()

TAX_ANCHORS = [  # (what, the reference's value, ours)
    ("image request, no style (the reference's +2 quirk)", 3.0,
     taxes.activation_tax(extra_source_images=0, styled=False)),
    ("text request", 1.0, taxes.activation_tax(extra_source_images=0, styled=False)),
    ("image, 2 extra source images (+5 each, and the quirk)", 13.0,
     taxes.activation_tax(extra_source_images=2, styled=False)),
    ("image, someone else's style", 3.0, taxes.activation_tax(extra_source_images=0, styled=True)),
]  # fmt: skip
DEVIATIONS = {TAX_ANCHORS[0][0]: -2.0, TAX_ANCHORS[2][0]: -2.0}


@pytest.mark.parametrize(("what", "reference", "ours"), TAX_ANCHORS, ids=[a[0] for a in TAX_ANCHORS])
def test_activation_tax_anchors(what: str, reference: float, ours: float) -> None:
    assert ours - reference == DEVIATIONS.get(what, 0.0), what


def test_the_style_owner_gets_two_of_the_activation_tax() -> None:
    legs = taxes.activation_legs(payer_id=7, extra_source_images=1, style_owner_id=9)
    assert sum(leg.amount for leg in legs) == 0
    by_user = {leg.user_id: leg.amount for leg in legs if leg.user_id is not None}
    assert by_user == {7: -800, 9: 200}  # 1 + 5 + 2, the 2 to the style's owner
    assert [leg.amount for leg in legs if leg.system == "horde"] == [600]
    own = taxes.activation_legs(payer_id=7, style_owner_id=7)  # one's own style pays no share
    assert {leg.user_id: leg.amount for leg in own if leg.user_id} == {7: -100}


BRIDGE_ANCHORS = [  # (bridge_agent, the reference's multiplier)
    ("AI Horde Worker reGen:10.1.0:https://github.com/Haidra-Org/horde-worker-reGen", 1.0),
    ("AI Horde Worker reGen:9.0.2:https://github.com/Haidra-Org/horde-worker-reGen", 0.9),
    ("AI Horde Worker reGen:4.2.0:https://github.com/Haidra-Org/horde-worker-reGen", 0.9),
    ("KoboldCppEmbedWorker:1:https://github.com/LostRuins/koboldcpp", 1.0),
    ("SD-WebUI Stable Horde Worker Bridge:1:https://example.org", 0.75),  # unofficial
    ("my own bridge:99:https://example.org", 0.75),
    ("unknown:0:unknown", 0.75),
    (f"{OUR_BRIDGE}:0.1.0:https://example.org", 1.0),  # ours: official at its latest version
    (f"{OUR_BRIDGE}:not-a-version", 1.0),
]


@pytest.mark.parametrize(("agent", "reference"), BRIDGE_ANCHORS, ids=[a[0][:40] for a in BRIDGE_ANCHORS])
def test_bridge_multipliers(agent: str, reference: float) -> None:
    assert TABLE.reward_multiplier(agent) == reference


def test_an_operators_capability_file_makes_a_bridge_official(tmp_path: Path) -> None:
    path = tmp_path / "bridges.json"
    path.write_text(json.dumps({"Community Bridge": {"1": ["r2"], "3": ["img2img"]}}))
    table = load_table(str(path))
    assert table.reward_multiplier("Community Bridge:3.0:x") == 1.0
    assert table.reward_multiplier("Community Bridge:2.0:x") == 0.9
    assert table.reward_multiplier("Other Bridge:3.0:x") == 0.75


def test_an_untrusted_owner_gets_half_of_a_job_reward_in_escrow() -> None:
    legs = rewards.job_reward_legs(owner_id=3, paid=1001, owner_trusted=False)
    assert [(leg.amount, leg.escrow) for leg in legs] == [(501, False), (500, True)]
    trusted = rewards.job_reward_legs(owner_id=3, paid=1001, owner_trusted=True)
    assert [(leg.amount, leg.escrow) for leg in trusted] == [(1001, False)]


@pytest.mark.parametrize(
    ("kind", "trusted", "escrowed"),
    [("image", False, True), ("text", False, True), ("alchemy", False, False), ("image", True, False)],
)
def test_uptime_rewards_go_to_escrow_except_alchemists_and_trusted_owners(
    kind: str, trusted: bool, escrowed: bool
) -> None:
    legs = rewards.uptime_reward_legs(owner_id=3, paid=5000, owner_trusted=trusted, kind=kind)
    assert sum(leg.amount for leg in legs) == 0
    owner = next(leg for leg in legs if leg.user_id == 3)
    assert (owner.amount, owner.escrow) == (5000, escrowed)


UPTIME_ANCHORS = [  # (what, the reference's formula worked by hand, ours)
    ("image, 3 models", 56.0, pricing.image_uptime_reward(models=3, allow_lora=False)),
    ("image, 3 models, LoRAs", 86.0, pricing.image_uptime_reward(models=3, allow_lora=True)),
    ("text 13B validated, 4096 context", round((25 + 15 * 4) * 13 / 7, 2),
     pricing.text_uptime_reward(max_context_length=4096, params_billions=13, validated=True)),
    ("text 1B validated (floor of 0.25)", round((25 + 15 * 2) * 0.25, 2),
     pricing.text_uptime_reward(max_context_length=2048, params_billions=1, validated=True)),
    ("text 7B unvalidated", round((25 + 15 * 2) * 0.3 * 1, 2),
     pricing.text_uptime_reward(max_context_length=2048, params_billions=7, validated=False)),
    ("text unknown model", round((25 + 15 * 2) * 0.5, 2),
     pricing.text_uptime_reward(max_context_length=2048, params_billions=None, validated=True)),
    ("text context capped at 262144", ((25 + 15 * 256) * 1),
     pricing.text_uptime_reward(max_context_length=10**7, params_billions=7, validated=True)),
    ("interrogation", 40.0, pricing.ALCHEMY_UPTIME_REWARD),
]  # fmt: skip


@pytest.mark.parametrize(("what", "reference", "ours"), UPTIME_ANCHORS, ids=[a[0] for a in UPTIME_ANCHORS])
def test_uptime_reward_anchors(what: str, reference: float, ours: float) -> None:
    assert ours == pytest.approx(reference), what


def test_uptime_accrues_between_close_check_ins_and_pays_per_period() -> None:
    accrual = Accrual(last_seen=None, accrued=0.0)
    for at in range(0, 1300, 100):  # online 1200 s, checked in every 100 s
        accrual.see(float(at), True, 5000)
    assert (accrual.seconds, accrual.payments, accrual.accrued) == (1200.0, [5000, 5000], 0.0)
    accrual.see(1500.0, True, 5000)  # 300 s: still online
    accrual.see(1850.0, True, 5000)  # 350 s: back from offline, a fresh period
    assert accrual.seconds == 1500.0 and accrual.accrued == 0.0
    accrual.see(2300.0, False, 5000)  # paused or in maintenance: no accrual
    accrual.see(2250.0, True, 5000)  # an older event another node wrote: ignored
    assert accrual.seconds == 1500.0 and accrual.last_seen == 2300.0 and len(accrual.payments) == 2


def test_upfront_anchors() -> None:
    assert pricing.free_image_side(threads=0, queued=0, baselines=[None]) == 1024
    assert pricing.free_image_side(threads=0, queued=500, baselines=[None]) == 576  # 1024 - 450, floored
    assert pricing.free_image_side(threads=10, queued=300, baselines=[None]) == 854  # 1024 + 100 - 270
    assert pricing.free_image_side(threads=0, queued=500, baselines=["stable_diffusion_xl"]) == 1024
    assert pricing.free_text_length(threads=0, queued=0) == 512
    assert pricing.free_text_length(threads=2, queued=300) == 256  # 512 + 10 - 270, floored
    assert pricing.accurate_steps(30, "k_heun") == 60 and pricing.accurate_steps(5, "k_dpm_adaptive") == 40


def test_allow_downgrade_shrinks_as_the_reference() -> None:
    assert pricing.downgraded_size(1536, 1536, side=1024) == (1024, 1024)
    assert pricing.downgraded_size(2048, 1024, side=1024) == (1408, 704)  # the shape kept, snapped to 64
    assert pricing.downgraded_size(768, 768, side=1024) == (768, 768)  # already free
    w, h = pricing.downgraded_size(4096, 64, side=576)
    assert w * h >= 512 * 512 and w % 64 == 0 and h % 64 == 0
    assert pricing.downgraded_steps(60, sampler="k_euler", max_steps=40, controlnet=False) == 40
    assert pricing.downgraded_steps(45, sampler="k_heun", max_steps=40, controlnet=False) == 20
    assert pricing.downgraded_steps(12, sampler="lcm", max_steps=40, controlnet=False) == 10
    assert pricing.downgraded_steps(25, sampler="k_euler", max_steps=40, controlnet=True) == 20
    assert pricing.downgraded_steps(30, sampler="k_euler", max_steps=40, controlnet=False) == 30


def test_slow_workers_false_costs_a_fifth_more() -> None:
    slow = pricing.image_burn(
        10.0, source_image=False, upscalers=0, slow_workers=True, worker_blacklist=False
    )
    fast = pricing.image_burn(
        10.0, source_image=False, upscalers=0, slow_workers=False, worker_blacklist=False
    )
    assert (slow, fast) == (11.0, pytest.approx(13.2))
