"""horde: a self-hostable, drop-in implementation of the AI Horde API v2."""

__version__ = "0.1.0"
