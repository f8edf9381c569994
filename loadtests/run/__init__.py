"""Running one load test: preflight, the child processes it stacks, and their teardown."""
