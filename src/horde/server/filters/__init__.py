"""Moderator prompt filters and the prompt pipeline of image requests (SEMANTICS.md 1.10 and 8)."""
