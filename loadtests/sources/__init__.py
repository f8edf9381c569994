"""What a run records while it runs: server samples, pool metrics, the server log."""
