"""Moderators' countermeasures: IP timeouts, blocked worker addresses, IP reputation and the horde's
modes (maintenance, invite-only, raid)."""
