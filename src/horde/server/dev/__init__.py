"""Test-stack helpers that exist only when explicitly enabled."""
