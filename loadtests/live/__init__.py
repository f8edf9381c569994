"""The live view of a running test: in the terminal and in Locust's web UI."""
