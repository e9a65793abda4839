"""Teams: groups of workers whose figures add up (SEMANTICS.md 1.6)."""
