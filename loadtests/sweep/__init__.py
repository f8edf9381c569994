"""A pool-size sweep: cells run, their table, the recommendation, sweep.html."""
