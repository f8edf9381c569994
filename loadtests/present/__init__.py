"""Pages and tables for people: the run report, the comparison, charts, templates."""
