"""What the command line shares between its commands: option groups, durations, the config file, JSON output."""
