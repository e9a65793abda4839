"""Benchmarks of a horde over HTTP: the scenarios of our performance issue, a runner, JSON results.

Not tests: figures only, plus the pass/fail of each scenario's target. See bench/README.md.
"""
