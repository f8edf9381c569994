"""Attribution of backends to clients, and the watch filter: pure logic, plus the real socket table."""

import os
import socket

import pytest

from loadtests.sources.attribution import (
    Backend,
    SocketOwners,
    WatchFilter,
    client_key,
    parse_watch_filter,
    socket_table,
    unnamed_endpoints,
)


def backend(*, app="", addr="127.0.0.1", port=50_000, user="app", db="shop", state="idle") -> Backend:
    return Backend(state, app, addr, port, user, db, 10.0, 1.0)


def test_application_name_wins_over_everything():
    assert client_key(backend(app="shop-api:7"), {("127.0.0.1", 50_000): 99}) == "shop-api:7"


def test_unnamed_local_client_is_its_owning_process():
    owners = {("127.0.0.1", 50_000): 4242, ("127.0.0.1", 50_001): 4243}
    assert client_key(backend(port=50_001), owners) == "pid:4243"


def test_unnamed_remote_client_is_its_host():
    assert client_key(backend(addr="10.1.2.3", port=41_000), {}) == "addr:10.1.2.3"


def test_ipv4_mapped_address_matches_the_socket_table_form():
    assert client_key(backend(addr="::ffff:127.0.0.1"), {("127.0.0.1", 50_000): 7}) == "pid:7"


def test_unix_socket_client_is_its_user_and_database():
    assert client_key(backend(addr=None, port=-1), {}) == "user:app@shop"


def test_only_unnamed_tcp_clients_need_an_owner_lookup():
    backends = [backend(app="named"), backend(port=50_002), backend(addr=None, port=-1)]
    assert unnamed_endpoints(backends) == {("127.0.0.1", 50_002)}


def test_watch_filter_needs_every_given_field():
    watch = parse_watch_filter(["database=shop", "application_name=shop-"])
    assert watch.matches(backend(app="shop-api:1"))
    assert not watch.matches(backend(app="cron:1"))
    assert not watch.matches(backend(app="shop-api:1", db="other"))
    assert WatchFilter().matches(backend(user="anyone", db="anything"))
    assert watch.as_specs() == ["database=shop", "application_name=shop-"]


@pytest.mark.parametrize(
    ("specs", "message"),
    [(["host=db1"], "unknown filter 'host'"), (["database"], "expected NAME=VALUE"), (["user="], "needs a value")],
)
def test_watch_filter_says_what_is_wrong(specs, message):
    with pytest.raises(ValueError, match=message):
        parse_watch_filter(specs)


def test_owners_are_looked_up_only_for_new_endpoints_and_forgotten_when_gone():
    tables = iter([{("127.0.0.1", 1): 11, ("127.0.0.1", 2): 22}, {("127.0.0.1", 1): 33}])
    owners = SocketOwners(lookup=lambda: next(tables))
    assert owners.resolve({("127.0.0.1", 1), ("127.0.0.1", 2)}) == {("127.0.0.1", 1): 11, ("127.0.0.1", 2): 22}
    assert owners.resolve({("127.0.0.1", 2)}) == {("127.0.0.1", 2): 22}
    assert owners.lookups == 1
    # Port 1 is handed out again, to another process: looked up afresh.
    assert owners.resolve({("127.0.0.1", 1), ("127.0.0.1", 2)})[("127.0.0.1", 1)] == 33
    assert owners.lookups == 2


def test_socket_table_names_this_process_as_owner_of_its_connection():
    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.create_connection(server.getsockname()) as client:
            address, port = client.getsockname()
            assert socket_table()[(address, port)] == os.getpid()


def test_socket_table_keeps_only_clients_of_the_server_port():
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_server(("127.0.0.1", 0)) as other:
        with socket.create_connection(server.getsockname()) as ours, socket.create_connection(other.getsockname()) as theirs:
            table = socket_table(server_port=server.getsockname()[1])
            assert table[ours.getsockname()] == os.getpid()
            assert theirs.getsockname() not in table
