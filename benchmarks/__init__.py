"""Benchmarks: `make bench` (or `python -m benchmarks [NAME...]`) writes JSON under results/."""
