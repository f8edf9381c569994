"""The harness's burst shape and Locust options without the sample app's users.

With `--locustfile PATH` Locust loads this file beside the user's own
(`-f burst_shape.py,PATH`): the user's classes make the requests, the
harness's shape decides how many users run when. Importing the bundled
locustfile registers its command-line options once; only the shape is
exposed here, so its users stay out of the run.
"""

from loadtests.load.locustfile import BurstShape

__all__ = ["BurstShape"]
