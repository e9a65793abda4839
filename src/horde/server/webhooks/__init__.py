"""Webhook deliveries: written in the transaction that finished a request, sent after commit."""
