"""Messages to workers, delivered in their pops (SEMANTICS.md 1.4)."""
