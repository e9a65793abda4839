"""The test-only `POST /dev/test-user` (loopback only, when explicitly enabled; not in the swagger)."""

from horde.contract.common import HordeModel


class DevTestUserInput(HordeModel):
    """Body: who to create (or reuse, when the oauth_id exists)."""

    username: str = "test_user"
    oauth_id: str = "ci_test_user"
    moderator: bool = True
    trusted: bool = True
    kudos: float = 10000


class DevTestUser(HordeModel):
    """Reply: the user and a fresh API key (shown once)."""

    api_key: str
    user_id: str  # the numeric id, as a string
    username: str
    alias: str
    kudos: int | float  # as sent (an int stays an int on the wire)
    trusted: bool
    moderator: bool
    created: bool  # true when this call created the user (201), false when it refreshed it (200)
