"""Kudos: the only writer of balances (postings in integer hundredths that sum to zero)."""
