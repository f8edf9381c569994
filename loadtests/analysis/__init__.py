"""Figures derived from a run folder: summary, exact counts, lifecycle, time series."""
