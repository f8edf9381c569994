"""`poolcheck budget --pgbouncer`: both levels, an answer line in PgBouncer's terms, --json, bad input."""

import json
from pathlib import Path

import jsonschema
import pytest

from loadtests.cli import main

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "loadtests/options/schemas/budget.schema.json").read_text())
# The question: 6 pods x 4 workers, SQLAlchemy pool_size 5 + max_overflow 10, max_connections 400, 3 reserved
QUESTION = ["budget", "--hosts", "6", "--workers", "4", "--pool-size", "5", "--max-overflow", "10",
            "--max-connections", "400", "--superuser-reserved-connections", "3"]


def _budget(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main([*QUESTION, *args])
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def test_both_levels_and_the_answer_line(capsys):
    code, out, _ = _budget(capsys, "--pgbouncer", "transaction", "--pgbouncer-pool-size", "50",
                           "--pgbouncer-max-client-conn", "500", "--other-clients", "3")
    assert code == 0
    lines = out.splitlines()
    # 6 x 4 x (5 + 10) = 360 clients against 500; 50 + 3 other clients on the server against 397 usable
    assert any(line.startswith("PgBouncer clients:") and "= 360; max_client_conn 500; fits" in line for line in lines)
    assert any(line.startswith("PgBouncer server pools:") and "= 53; usable 397; fits" in line for line in lines)
    # 397 usable less 20 % = 317 kept, less the 3 other clients = 314
    assert lines[-1] == ("answer: behind PgBouncer (transaction pooling) set default_pool_size <= 314 (reserve_pool_size 0)"
                         " and max_client_conn >= 360, keeping 20 % headroom of 397 usable, with 6 hosts"
                         " (now default_pool_size 50, max_client_conn 500: your setting fits)")


def test_clients_over_max_client_conn_fail_during_a_deploy(capsys):
    # PgBouncer's default max_client_conn 100 takes none of 360 clients; 8 hosts at the deploy's peak: 480
    code, out, _ = _budget(capsys, "--pgbouncer", "transaction", "--surge-hosts", "2")
    assert code == 1
    assert "max_client_conn >= 480" in out.splitlines()[-1] and "your setting does NOT fit" in out.splitlines()[-1]


def test_session_pooling_says_clients_wait_for_a_server_connection(capsys):
    code, out, _ = _budget(capsys, "--pgbouncer", "session", "--pgbouncer-max-client-conn", "400")
    assert code == 0
    assert "each of the 360 client connections holds a server connection while connected; beyond 20" in out


def test_json_holds_both_levels_and_validates(capsys):
    code, out, err = _budget(capsys, "--pgbouncer", "transaction", "--pgbouncer-pool-size", "400",
                             "--pgbouncer-max-client-conn", "500", "--json")
    document = json.loads(out)
    jsonschema.validate(document, SCHEMA)
    # 400 server connections do not fit 397 usable, though 360 would fit directly
    assert code == 1 and document["fits"] is False and document["direct_fits"] is True
    pooler = document["pgbouncer"]
    assert (pooler["server_total"], pooler["server_fits"], pooler["client_total"]) == (400, False, 360)
    assert pooler["answer"]["default_pool_size_at_most"] == 317
    assert "answer: behind PgBouncer" in err


@pytest.mark.parametrize(("args", "names"), [
    (["--pgbouncer-pool-size", "5"], "--pgbouncer-pool-size"),
    (["--pgbouncer-max-client-conn", "5"], "--pgbouncer-max-client-conn"),
    (["--pgbouncer", "session", "--pgbouncer-pool-size", "0"], "--pgbouncer-pool-size"),
    (["--pgbouncer", "statement"], "--pgbouncer"),
])
def test_bad_input_is_one_line(capsys, args, names):
    with pytest.raises(SystemExit) as exit_:
        main([*QUESTION, *args])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and names in lines[0]
