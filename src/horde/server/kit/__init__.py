"""Domain-free helpers of the server."""
