"""Styles and collections of styles (SEMANTICS.md 1.9, 1.13 of the issue; ADR 0024)."""
