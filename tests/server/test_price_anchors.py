"""Every price anchor of SEMANTICS.md 4.1-4.3, the reference's value and our deviation from it.

The image anchors are the reference's golden values (its network, whose weights we do not use): our
own formula must stay within 10 % of each. The text and alchemy anchors are the reference's formulas
worked by hand for a few points: there we match exactly.

| anchor                                             | reference | ours   | deviation |
| image 512x512, 50 steps, k_euler (the basis)       | 11.0      | 11.0   | 0.0 %     |
| image 1024x1024, 50 steps                          | 29.03     | 29.03  | 0.0 %     |
| image 768x512, 30 steps, canny img2img             | 15.13     | 15.13  | 0.0 %     |
| image 512x512, 35 steps, GFPGAN + RealESRGAN_x4plus| 25.46     | 25.46  | 0.0 %     |
| the old fallback formula at 1024x1024 (not ours)   | 29.03     | 60.06  | +107 %    |
"""

from __future__ import annotations

import math

import pytest

from horde.server.kudos import pricing

TOLERANCE = 0.10


def _image(
    width: int = 512, height: int = 512, steps: int = 50, pp: int = 0, cn: bool = False, loras: int = 0
) -> float:
    return pricing.image_base_price(
        width=width, height=height, steps=steps, post_processors=pp, controlnet=cn, loras=loras, tis=False
    )


IMAGE_ANCHORS = [  # (what, reference value, ours)
    ("512x512, 50 steps, k_euler, cfg 7.5, karras, txt2img (the basis)", 11.0, _image()),
    ("1024x1024, 50 steps", 29.03, _image(1024, 1024)),
    ("768x512, 30 steps, canny img2img", 15.13, _image(768, 512, 30, cn=True)),
    ("512x512, 35 steps, uni_pc, GFPGAN + RealESRGAN_x4plus", 25.46, _image(steps=35, pp=2)),
]


@pytest.mark.parametrize(("what", "reference", "ours"), IMAGE_ANCHORS, ids=[a[0] for a in IMAGE_ANCHORS])
def test_image_anchor_within_ten_percent(what: str, reference: float, ours: float) -> None:
    deviation = (ours - reference) / reference
    assert abs(deviation) <= TOLERANCE, f"{what}: ours {ours} vs {reference} ({deviation:+.1%})"


def test_image_extras_and_monotony() -> None:
    assert _image(loras=2) == pytest.approx(11.0 + 6)  # +3 per LoRA (4.1.1)
    tis = pricing.image_base_price(
        width=512, height=512, steps=50, post_processors=0, controlnet=False, loras=0, tis=True
    )
    assert tis == pytest.approx(12.0)  # +1 with any TI
    assert _image(steps=25) < _image() < _image(steps=100)
    assert _image(512, 768) < _image(768, 768) < _image(1024, 1024) < _image(2048, 2048)
    assert _image(64, 64, 1) > 0


def _c(context: float) -> float:  # 4.2, written out again from the text, not from pricing.py
    return min(max(1.2 + 2.2 ** math.log2(context / 1024), 0.1), 30)


TEXT_ANCHORS = [  # (what, the reference's formula worked by hand, ours)
    ("no model, 80 tokens, 1024 context", 80 * 13 * 2.2 / 100,
     pricing.text_estimate(max_length=80, max_context_length=1024, params_billions=None)),
    ("13B, 80 tokens, 1024 context", 80 * 1 * 13 * 2.2 / 100,
     pricing.text_estimate(max_length=80, max_context_length=1024, params_billions=13)),
    ("70B, 512 tokens, 4096 context", 512 * (70 / 13) ** 0.2 * 70 * (1.2 + 4.84) / 100,
     pricing.text_estimate(max_length=512, max_context_length=4096, params_billions=70)),
    ("7B, 200 tokens, 256 context", 200 * 1 * 7 * (1.2 + 2.2**-2) / 100,
     pricing.text_estimate(max_length=200, max_context_length=256, params_billions=7)),
    ("reward: 13B validated, 400 chars of text, 80-char prompt", 100 * 13 / 125 * _c(20),
     pricing.text_reward(text="x" * 400, prompt="p" * 80, max_length=512, params_billions=13,
                         validated=True, owner_trusted=False)),
    ("reward: unvalidated backend x0.3", 100 * 13 / 125 * _c(20) * 0.3,
     pricing.text_reward(text="x" * 400, prompt="p" * 80, max_length=512, params_billions=13,
                         validated=False, owner_trusted=False)),
    ("reward: short text floored at 20 tokens", 20 * 13 / 125 * _c(20),
     pricing.text_reward(text="hi", prompt="p" * 80, max_length=512, params_billions=13,
                         validated=True, owner_trusted=False)),
    ("reward: unknown model, untrusted owner", _c(20),
     pricing.text_reward(text="x" * 400, prompt="p" * 80, max_length=512, params_billions=None,
                         validated=True, owner_trusted=False)),
    ("reward: unknown model, trusted owner", 100 * _c(20) * 0.027,
     pricing.text_reward(text="x" * 400, prompt="p" * 80, max_length=512, params_billions=None,
                         validated=True, owner_trusted=True)),
]  # fmt: skip

ALCHEMY_ANCHORS = [
    ("caption: form kudos", 1.0, pricing.alchemy_form_kudos("caption", tiles=1)),
    ("interrogation: form kudos", 3.0, pricing.alchemy_form_kudos("interrogation", tiles=1)),
    ("RealESRGAN_x4plus on 4 tiles", 12.0, pricing.alchemy_form_kudos("RealESRGAN_x4plus", tiles=4)),
    ("caption burn, slow_workers (the default)", 3.0, pricing.alchemy_burn(1.0, slow_workers=True)),
    ("interrogation burn, fast workers only", 4.0, pricing.alchemy_burn(3.0, slow_workers=False)),
]


@pytest.mark.parametrize(
    ("what", "reference", "ours"),
    TEXT_ANCHORS + ALCHEMY_ANCHORS,
    ids=[a[0] for a in TEXT_ANCHORS + ALCHEMY_ANCHORS],
)
def test_text_and_alchemy_anchors_match(what: str, reference: float, ours: float) -> None:
    assert ours == pytest.approx(reference, rel=1e-9), what


def test_the_old_fallback_was_far_off() -> None:
    """Why the image formula changed: the reference's fallback misses the 1024x1024 anchor twofold."""
    ratio = ((1024 * 1024 - 4096) ** 1.75) / ((1024 * 1024 - 4096) ** 1.75)
    fallback = round(0.1232 * 50 + ratio * 0.1232 * 50 * 8.75, 2)
    assert fallback == pytest.approx(60.06) and abs(fallback - 29.03) / 29.03 > TOLERANCE
    assert abs(_image(1024, 1024) - 29.03) / 29.03 <= TOLERANCE
