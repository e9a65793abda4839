"""The cached, read-only view of a user that request handlers act for."""

from __future__ import annotations

from dataclasses import dataclass

from horde.server.users.models import ANON_USER_ID, User


@dataclass(frozen=True, slots=True)
class Principal:
    id: int
    username: str
    oauth_id: str
    concurrency: int
    worker_invited: int
    moderator: bool
    trusted: bool
    flagged: bool
    customizer: bool
    service: bool
    education: bool
    vpn: bool
    special: bool
    deleted: bool
    admin: bool

    @property
    def alias(self) -> str:
        return f"{self.username}#{self.id}"

    @property
    def is_anon(self) -> bool:
        return self.id == ANON_USER_ID

    @property
    def is_trusted(self) -> bool:
        return self.trusted or self.moderator

    @classmethod
    def of(cls, user: User, *, admins: frozenset[int]) -> Principal:
        return cls(
            id=user.id,
            username=user.username,
            oauth_id=user.oauth_id,
            concurrency=user.concurrency,
            worker_invited=user.worker_invited,
            moderator=user.moderator,
            trusted=user.trusted,
            flagged=user.flagged,
            customizer=user.customizer,
            service=user.service,
            education=user.education,
            vpn=user.vpn,
            special=user.special,
            deleted=user.deleted,
            admin=user.id in admins,  # by id: the username part of an alias can be changed
        )
