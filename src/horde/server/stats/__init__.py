"""Generation statistics: insert-only completion events folded into time buckets (ADR 0021)."""
