"""The own app's users: plain Locust, nothing from poolcheck."""

from locust import HttpUser, between, task


class ShopUser(HttpUser):
    wait_time = between(0.02, 0.1)

    @task(3)
    def lookup(self) -> None:
        self.client.get("/lookup")

    @task(1)
    def report(self) -> None:
        self.client.get("/report")
