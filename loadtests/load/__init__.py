"""What Locust imports: the users, the burst shape, and the files recorded beside Locust's own."""
