"""`--json`: the document on stdout validates against its schema in loadtests/options/schemas/, and every
human line goes to stderr. One real short run, read by several tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from conftest import SHORT_RUN, poolcheck

# Its tests share a module-scoped run: one test process runs them all (make test uses xdist).
pytestmark = pytest.mark.xdist_group("test_json_output")

SCHEMAS = Path(__file__).resolve().parents[1] / "loadtests" / "options" / "schemas"


def schema(name: str) -> dict:
    document = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(document)
    return document


@pytest.fixture(scope="module")
def json_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("json-run") / "results"
    return poolcheck("run", *SHORT_RUN, "--workers", "2", "--max-size", "4", "--json", results_dir=results)


@pytest.mark.slow
def test_run_json_is_the_summary_and_validates(json_run):
    assert json_run.returncode in (0, 1), json_run.stderr[-3000:]
    document = json.loads(json_run.stdout)  # stdout holds the document and nothing else
    jsonschema.validate(document, schema("summary"), cls=jsonschema.Draft202012Validator)
    run_dir = json_run.results_dir / document["run_id"]
    assert document == json.loads((run_dir / "summary.json").read_text())
    assert document["verdict"] == ("pass" if json_run.returncode == 0 else "fail")
    # The lines for people are all on stderr: the budget before the run, the folder after it.
    assert "budget 1 hosts x 2 workers x max_size 4" in json_run.stderr and str(run_dir) in json_run.stderr


@pytest.mark.slow
def test_compare_json_validates_and_keeps_stdout_clean(json_run, tmp_path):
    run_dir = json_run.results_dir / json.loads(json_run.stdout)["run_id"]
    done = subprocess.run([sys.executable, "-m", "loadtests.cli", "compare", str(run_dir), str(run_dir), "--json",
                           "--out", str(tmp_path / "compare.html")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    jsonschema.validate(document, schema("compare"), cls=jsonschema.Draft202012Validator)
    assert document["runs"] == [run_dir.name, run_dir.name] and document["page"] == str(tmp_path / "compare.html")
    peak = next(row for row in document["measured"] if row["label"] == "peak connections (sampled)")
    assert peak["values"] == [json.loads(json_run.stdout)["peak_connections"]] * 2
    assert "poolcheck compare" in done.stderr  # the table


def test_summary_schema_refuses_what_it_should():
    """The schema is not a blank cheque: a summary without its verdict, or with an unknown one, is refused."""
    validator = jsonschema.Draft202012Validator(schema("summary"))
    assert list(validator.iter_errors({"schema_version": 1}))
    for name in ("budget", "sweep", "compare"):
        assert list(jsonschema.Draft202012Validator(schema(name)).iter_errors({}))
