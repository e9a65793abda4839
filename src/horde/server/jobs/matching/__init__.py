"""Matching workers to queued jobs: the conditions (`conditions.py`, each declared once in SQL and in
Python) and the claim built from them (`claim.py`). Read these two files to know who gets what."""

from horde.server.jobs.matching.claim import (
    ACROSS_REQUESTS,
    batch_statement,
    claim_key,
    claim_params,
    claim_statement,
    match_filters,
)
from horde.server.jobs.matching.conditions import CONDITIONS, NOT_REPORTED, Condition, skip_reason

__all__ = [
    "ACROSS_REQUESTS",
    "CONDITIONS",
    "NOT_REPORTED",
    "Condition",
    "batch_statement",
    "claim_key",
    "claim_params",
    "claim_statement",
    "match_filters",
    "skip_reason",
]
