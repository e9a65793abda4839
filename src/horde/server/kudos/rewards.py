"""How a worker's reward reaches its owner (SEMANTICS.md 4.5; ADR 0023).

A trusted owner gets every reward on the spendable balance. An untrusted owner gets half of a job's
reward there and half in escrow (`evaluating_kudos`), and all of an uptime reward in escrow, except an
alchemist's uptime, which the reference pays straight to the balance. Escrow is released when the owner
is promoted (kudos/trust.py).
"""

from __future__ import annotations

from horde.server.kudos.service import Leg


def job_reward_legs(*, owner_id: int, paid: int, owner_trusted: bool) -> list[Leg]:
    """The owner's legs of a job's reward of `paid` hundredths."""
    if owner_trusted:
        return [Leg(amount=paid, user_id=owner_id)]
    escrowed = paid // 2
    return [
        Leg(amount=paid - escrowed, user_id=owner_id),
        Leg(amount=escrowed, user_id=owner_id, escrow=True),
    ]


def uptime_reward_legs(*, owner_id: int, paid: int, owner_trusted: bool, kind: str) -> list[Leg]:
    """One uptime reward of `paid` hundredths, from the horde's account."""
    escrow = not owner_trusted and kind != "alchemy"
    return [Leg(amount=paid, user_id=owner_id, escrow=escrow), Leg(amount=-paid, system="uptime")]
