"""The server's records of worker programs, their check-ins and capabilities."""
