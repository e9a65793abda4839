"""Shared keys: API keys that spend a user's kudos within limits (SEMANTICS.md 1.11)."""
