"""The users line and the failures-by-class bars at the moments they describe, on a constructed run folder.

Locust's history stamps a row with the whole second it was written in: a burst that
started at 3.7 s of the load shows in the row stamped 3 (or 4), up to a second early.
The locustfile's own records (loadtests/load/records.py) carry the moment itself.
"""

import json

from loadtests.analysis.folder import RunFolder
from loadtests.analysis.timeline import failures_by_class, load
from loadtests.analysis.timeline import Connections
from loadtests.present import charts

T0 = 1_800_000_000.4  # the load's start, between two whole seconds


def _folder(path):
    (path / "locust_load.json").write_text(json.dumps({"started_at_epoch": T0}))
    history = ["Timestamp,User Count,Type,Name,Total Request Count,Total Failure Count,50%,95%,99%"]
    # Written 0.9 s into each second: the burst of 40 users, started at T0 + 3.3 = ...003.7, shows in the row
    # stamped ...003 (written at ...003.9).
    for second in range(0, 8):
        users = 40 if second >= 3 else 5
        history.append(f"{1_800_000_000 + second},{users},,Aggregated,{second * 10},0,10,20,30")
    (path / "locust_stats_history.csv").write_text("\n".join(history) + "\n")
    (path / "locust_users.csv").write_text(
        "timestamp,users\n1800000000.512,5\n1800000003.702,40\n1800000007.950,0\n")
    # The locustfile counted 6 failures in the second before ...004.9 (its moment), 2 before ...005.9.
    (path / "locust_failures_by_second.csv").write_text(
        "timestamp,error_class,count\n1800000004.900,PoolTimeout,6\n1800000005.900,PoolTimeout,2\n")
    (path / "locust_requests_by_second.csv").write_text("second,requests,failures\n1800000004,30,6\n1800000005,30,2\n")
    return RunFolder(path)


def test_users_change_at_the_moment_the_locustfile_saw(tmp_path):
    series = load(_folder(tmp_path), t0=T0)
    assert series.users == [5, 40, 0]
    assert series.users_t == [0.112, 3.302, 7.55]  # not the history's 2.6 (the row stamped ...003)
    # The rates keep their own clock: requests of the second ...004 end at ...005, 4.6 s into the load.
    assert series.rate_t[1] == 4.6
    figure = charts.timeline(Connections(), series, limits=[], marks=charts.Marks())
    (users,) = [trace for trace in figure.data if trace.name == "Locust users"]
    assert list(users.x) == [0.112, 3.302, 7.55] and users.line.shape == "hv"


def test_failures_by_class_cover_the_second_before_their_moment(tmp_path):
    folder = _folder(tmp_path)
    by_class = failures_by_class(folder, t0=T0)
    assert by_class == {"PoolTimeout": ([4.5, 5.5], [6, 2])}
    figure = charts.failures(by_class, load(folder, t0=T0), marks=charts.Marks())
    (bar,) = [trace for trace in figure.data if trace.type == "bar"]
    # Each bar spans the second before its moment: [3.5, 4.5] and [4.5, 5.5], as a requests/s value does.
    assert [x + bar.offset for x in bar.x] == [3.5, 4.5] and bar.width == 1.0
