"""Rules on a run behind the cloud-proxy emulator: did the pools survive its idle cut, and what keeps them alive.

psycopg applies max_lifetime only when a connection comes back to the pool or
is checked, so a connection idle in the pool past the cut is handed out dead
however far under the cut max_lifetime is. What does help depends on how the
proxy cuts (README, "Behind a cloud proxy"):

- reset: the pool's check finds the dead connection at once and replaces it;
  but after a mass cut a request meets the dead ones in turn, and psycopg
  waits 0, 1, 2, 4 s ... between failed checks (psycopg_pool's
  AttemptWithBackoff), up to pool_timeout;
- silent: the check's own query hangs as long as a request would (the request
  gets a connection, after the client's timeout), so what helps is keeping
  connections from idling past the cut: TCP keepalives under the
  cut (they keep the proxy's flow alive), or max_idle under it (for the
  connections above min_size), with a client timeout to bound a hang.
"""

from __future__ import annotations

import math
from typing import Any

from loadtests.analysis.advice.findings import INFO, WARNING, Finding, Known, finding, not_known

# psycopg_pool's AttemptWithBackoff: no wait after the first failed check, then 1 s doubling (+-10 % jitter).
CHECK_BACKOFF_FIRST_S = 1.0
CHECK_BACKOFF_FACTOR = 2.0


def check_backoff_wait(dead: int) -> float:
    """Seconds one request waits, without jitter, once its check has failed on `dead` cut connections in a row.

    No wait after the first failure, then 1, 2, 4 s ...: 0, 0, 1, 3, 7 s for 0 to 4 dead connections.
    """
    return sum(CHECK_BACKOFF_FIRST_S * CHECK_BACKOFF_FACTOR ** (n - 1) for n in range(1, dead))


def dead_connections_survived(timeout_s: float) -> int:
    """The most cut connections in a row a request can meet and still get a connection within timeout_s.

    psycopg raises PoolTimeout when a check fails at or after the deadline: the D-th dead
    connection is checked check_backoff_wait(D - 1) s after the first, so D survives while that
    is under the timeout (the wait before the next connection is cut short at the deadline).
    """
    dead = 1
    while check_backoff_wait(dead) < timeout_s:
        dead += 1
    return dead


def _check_name(pool_kind: str | None) -> str:
    if pool_kind is None:
        return "check=ConnectionPool.check_connection, or pool_pre_ping=True for a SQLAlchemy engine"
    return {"sqlalchemy": "pool_pre_ping=True", "asyncpg": "a check before use (asyncpg's pool has none)"}.get(
        pool_kind, "check=ConnectionPool.check_connection")


def _under(cut: float) -> float:
    """A setting that stays well under the cut: half of it, to one decimal, at least 0.1 s."""
    return max(0.1, math.floor(cut / 2 * 10) / 10)


def proxy_cuts(summary: dict[str, Any], known: Known, *, target: float) -> list[Finding]:
    proxy = summary.get("proxy")
    if not proxy:
        return []
    config = known.config  # the load shape and the proxy's own settings are the harness's: always known
    cut, mode = float(proxy["idle_cut_s"]), proxy["mode"]
    cuts = sum(proxy["cuts"].values())
    figure = {"idle_cut_s": cut, "mode": mode, "cuts": cuts, "cut_idle": proxy["cut_idle"],
              "hung_requests": proxy["hung_requests"], "hang_max_s": proxy["hang_max_s"],
              "backends_left_open": proxy["backends_left_open"]}
    if not cuts:
        return [_nothing_cut(proxy, config, figure=figure, cut=cut)]
    return [_pools(summary, known, proxy, figure=figure, cut=cut, mode=mode, cuts=cuts), *_orphans(proxy, cut=cut)]


def _orphans(proxy: dict[str, Any], *, cut: float) -> list[Finding]:
    """Backends whose client was cut off silently: the server keeps each, and its slot, until it notices."""
    left = int(proxy.get("backends_left_open") or 0)
    if not left:
        return []
    keepalive = _under(cut)
    return [finding(
        "proxy_orphans", WARNING, figure={"backends_left_open": left, "backend_after_cut_max_s": proxy["backend_after_cut_max_s"]},
        setting="tcp_keepalives_idle", suggested=keepalive,
        why="After a silent cut, or a client host that vanished, the server never hears that the client is gone: the"
        " backend holds its slot against max_connections until the server's TCP keepalives find the peer dead (2 h"
        " by default) or idle_session_timeout ends it; a deploy or a partition can fill the server this way."
        " Keepalives run only on a connection with nothing in flight; the server's tcp_user_timeout ends one cut"
        " with unacknowledged data (README, \"Behind a cloud proxy\", measures both).",
        text=f"proxy: the server still held {left} backends of cut connections when the run ended (the longest"
        f" {proxy['backend_after_cut_max_s']:g} s after its cut) -> on the server, tcp_keepalives_idle={keepalive:g}"
        " with a small tcp_keepalives_interval and _count, or an idle_session_timeout above the pools' max_idle",
    )]


def _pools(summary: dict[str, Any], known: Known, proxy: dict[str, Any], *, figure: dict[str, Any], cut: float,
           mode: str, cuts: int) -> Finding:
    """What the cuts did to the pools, and the setting that keeps them alive."""
    config = known.config
    failed = {name: n for name, n in (summary.get("errors_by_class") or {}).items() if n}
    # For an app of your own, only what was declared (--pool, --pool-check...): None is "not known".
    pool_kind, checked = known.get("pool_kind"), known.get("pool_check")
    max_lifetime, max_idle = known.get("max_lifetime"), known.get("max_idle")
    min_size, max_size = known.get("min_size"), known.get("max_size")
    lifetime = (f" max_lifetime {float(max_lifetime):g} s is under the cut and did not prevent it: psycopg retires a"
                " connection for its age only when it comes back to the pool or is checked, never while it sits"
                " idle there." if max_lifetime is not None and float(max_lifetime) < cut else "")
    # Keeping connections from idling past the cut: max_idle closes only those above min_size.
    sizes_known = None not in (max_idle, min_size, max_size)
    if sizes_known and float(max_idle) >= cut and max_size > min_size and pool_kind != "sqlalchemy":
        idle_fix = f"max_idle {_under(cut):g} s, under the cut" + (
            f", with min_size 0 (max_idle never closes the {min_size} per worker that min_size keeps)" if min_size else "")
        idle_setting = "max_idle"
    else:
        idle_fix = f"TCP keepalives under the cut (keepalives_idle={_under(cut):g} in the DSN) keep the proxy's flow alive"
        idle_setting = "keepalives_idle"
        if not sizes_known:
            idle_fix += (f", or a max_idle under the cut for the connections above min_size"
                         f" ({not_known(known.missing('min_size', 'max_size', 'max_idle'))})")
    failures = ", ".join(f"{name} {n}" for name, n in sorted(failed.items())) or "no request failed"
    seen = f"{cuts} of {proxy['connections']} connections cut after {cut:g} s idle ({proxy['cut_idle']} idle), {failures}"
    if mode == "silent":
        hung = (f", {proxy['hung_requests']} requests or checks hung up to {proxy['hang_max_s']} s"
                if proxy["hung_requests"] else "")
        timeout = config.get("proxy_client_timeout")
        bound = (f" (here the client's timeout, {timeout:g} s, ended each hang)" if timeout else
                 " (here only the relay's stop ended them)")
        return finding(
            "proxy", WARNING, figure=figure, setting="keepalives_idle", suggested=_under(cut),
            why=f"A silent cut sends nothing: the next query on a cut connection hangs until the client gives up"
            f"{bound}, and the pool's check hangs the same way: it spares the request the error, not the wait, one"
            f" client timeout per cut connection it meets.{lifetime} Keepalives"
            " under the cut keep the flow open at the proxy; a tcp_user_timeout of a few seconds bounds a hang"
            " that still happens.",
            text=f"proxy: {seen}{hung} -> keepalives_idle={_under(cut):g} in the DSN (under the {cut:g} s silent cut)"
            f" and a tcp_user_timeout to bound a hang; a check would hang too" + (
                f"; or {idle_fix}" if idle_setting == "max_idle" else ""),
        )
    if checked is False or (checked is None and failed):
        return finding(
            "proxy", WARNING, figure=figure, setting="pool_check", suggested=True,
            why=f"A reset connection fails at the next query: without a check the pool hands it to a request.{lifetime}"
            " With the check, the dead connection fails its check at once and the pool opens another.",
            text=f"proxy: {seen} -> turn on the pools' check ({_check_name(pool_kind)})"
            + (" if they have none (whether they do is not known: give --pool-check or --no-pool-check)"
               if checked is None else "") + f"; or {idle_fix}",
        )
    timeout = known.get("pool_timeout")
    in_a_row = dead_connections_survived(float(timeout)) if timeout is not None else None
    backoff = " psycopg waits 0, 1, 2, 4 s ... between failed checks of one request"
    if pool_kind not in (None, "async", "sync"):
        # SQLAlchemy's pre-ping reconnects at once; asyncpg's pool has no check: no backoff to speak of.
        backoff, burst = "", ""
    elif in_a_row is None:
        burst = ("; a request that meets more cut connections in a row than its pool_timeout covers fails with"
                 " PoolTimeout, though fresh connections are ready (pool_timeout not known)")
    elif max_size is None or max_size > in_a_row:
        burst = (f"; a request that meets {in_a_row + 1} cut connections in a row reaches pool_timeout"
                 f" {float(timeout):g} s in the check's backoff and fails with pool_timeout, though fresh connections"
                 " are ready")
    else:
        burst = ""
    return finding(
        "proxy", WARNING if failed else INFO, figure={**figure, "dead_in_a_row_before_pool_timeout": in_a_row},
        setting=idle_setting, suggested=_under(cut),
        why=f"The check replaced the cut connections: each costs a new connection.{backoff}{burst}"
        + ("." if backoff else "") + lifetime,
        text=f"proxy: {seen}; the check replaced them -> "
        + ("nothing else must change; " if not failed else "")
        + f"{idle_fix} spares the reconnects and the check's backoff after a mass cut",
    )


def _nothing_cut(proxy: dict[str, Any], config: dict[str, Any], *, figure: dict[str, Any], cut: float) -> Finding:
    longest = proxy.get("longest_idle_s")
    quiet = float(config["quiet_seconds"])
    if quiet <= cut and (longest is None or longest < cut):
        # The load never let a connection sit idle as long as the cut: the run cannot tell.
        return finding(
            "proxy", INFO, figure={**figure, "longest_idle_s": longest, "quiet_s": quiet},
            setting="quiet_seconds", suggested=math.ceil(cut * 1.5),
            why="A connection is cut only after the cut's length without a byte; with quiet phases shorter than the"
            " cut only the quiet between bursts could reach it, and it did not.",
            text=f"proxy: nothing cut, but no connection sat idle for the {cut:g} s cut (longest pause"
            f" {longest if longest is not None else 0:g} s): not known whether the pools survive it ->"
            f" run quiet phases longer than the cut (--quiet-seconds {math.ceil(cut * 1.5)})",
        )
    return finding(
        "proxy", INFO, figure={**figure, "longest_idle_s": longest}, setting=None, suggested=None,
        why="Every connection carried a byte within the cut: the pools closed or used their connections in time.",
        text=f"proxy: nothing cut after {cut:g} s idle (longest pause {longest if longest is not None else 0:g} s)"
        " -> nothing to change",
    )
