"""The horde server: the API v2 application, its domains and its scheduler."""
