"""The field failure scenarios: each as data, and the runner of its faulty and fixed halves."""
