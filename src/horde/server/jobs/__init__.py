"""Requests clients submit and the jobs workers pop and submit, for every kind."""
