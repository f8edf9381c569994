"""`poolcheck scenario`: a scenario's faulty run, then its fixed run, judged and reported.

    results/scenario-<name>-<time>/
        <time>-faulty-w2-...    a full run folder (manifest, summary, report...)
        <time>-fixed-w2-...
        scenario.json           the plan, what was expected, what was seen, detected or not
        scenario.txt            the same in a few lines

scenario.json's verdict part is `judge(folder)`: a pure function of the
folder, like every other report of the harness.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from loadtests.config import RunConfig
from loadtests.errors import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_PASS
from loadtests.run.preflight import preflight
from loadtests.run.runner import Runner
from loadtests.run_folder import SUMMARY, now_iso, read_json, unique_dir, utc_stamp, write_json
from loadtests.scenarios.catalog import FAULTY, FIXED, HALVES, Scenario, find
from loadtests.scenarios.rules import Finding
from loadtests.scenarios.evidence import error_examples

logger = logging.getLogger("poolcheck.scenario_runner")

SCENARIO_JSON = "scenario.json"
SCENARIO_TXT = "scenario.txt"
Echo = Callable[[str], None]


def plan_runs(scenarios: list[Scenario], *, results_dir: Path) -> list[tuple[Scenario, dict[str, RunConfig]]]:
    """Every half's config, checked by the runner's preflight before anything starts (Refused on bad input)."""
    planned = []
    for scenario in scenarios:
        configs = {half: scenario.config(half, results_dir=results_dir) for half in HALVES}
        for config in configs.values():
            preflight(config)
        planned.append((scenario, configs))
    return planned


def run_scenario(scenario: Scenario, configs: dict[str, RunConfig], *, echo: Echo = print) -> tuple[int, dict[str, Any]]:
    """Both halves in a fresh folder; returns the exit code and the judged record."""
    results_dir = configs[FAULTY].results_dir
    folder = unique_dir(results_dir / f"scenario-{scenario.name}-{utc_stamp()}")
    plan: dict[str, Any] = {"scenario": scenario.name, "status": "running", "started_at": now_iso(), "runs": {}}
    write_json(folder / SCENARIO_JSON, plan)
    code = EXIT_PASS
    for half in HALVES:
        code = _run_half(scenario, half, configs[half].model_copy(update={"results_dir": folder}), plan, echo)
        write_json(folder / SCENARIO_JSON, plan)
        if code == EXIT_INTERRUPTED:
            break
    plan.update(status="interrupted" if code == EXIT_INTERRUPTED else "finished", ended_at=now_iso())
    write_json(folder / SCENARIO_JSON, plan)
    record = judge(folder)
    write_json(folder / SCENARIO_JSON, record)
    (folder / SCENARIO_TXT).write_text("\n".join(report_lines(record)) + "\n")
    for line in report_lines(record):
        echo(line)
    echo(str(folder))
    if code == EXIT_INTERRUPTED:
        return EXIT_INTERRUPTED, record
    return (EXIT_PASS if record["detected"] else EXIT_FAIL), record


def _run_half(scenario: Scenario, half: str, config: RunConfig, plan: dict[str, Any], echo: Echo) -> int:
    echo(f"[{scenario.name} {half}] {scenario.faulty_pattern if half == FAULTY else scenario.fix}")
    runner = Runner(config, limits=preflight(config), echo=lambda line: echo(f"[{scenario.name} {half}] {line}"),
                    label=half)
    code = runner.run()
    if runner.run_dir is not None:
        plan["runs"][half] = {"run_dir": runner.run_dir.name, "exit_code": code}
    return code


def judge(folder: Path) -> dict[str, Any]:
    """The scenario record: its plan, and for each half what was expected and what was seen."""
    plan = read_json(folder / SCENARIO_JSON)
    scenario = find(plan["scenario"])
    halves = {half: _judge_half(scenario, half, folder, plan["runs"].get(half)) for half in HALVES}
    findings = {half: Finding(h["failure_seen"], h["brief"], h["seen"]) for half, h in halves.items()}
    return {
        **{k: plan[k] for k in ("scenario", "status", "started_at", "ended_at", "runs") if k in plan},
        "reproduces": scenario.reproduces,
        "single_change": scenario.single_change,
        **halves,
        "detected": scenario.detected(findings[FAULTY], findings[FIXED]),
    }


def _judge_half(scenario: Scenario, half: str, folder: Path, run: dict[str, Any] | None) -> dict[str, Any]:
    expected = scenario.expected_faulty if half == FAULTY else scenario.expected_fixed
    setup = scenario.faulty_pattern if half == FAULTY else scenario.fix
    code = scenario.faulty_code if half == FAULTY else scenario.fixed_code
    summary_path = folder / run["run_dir"] / SUMMARY if run else None
    if summary_path is None or not summary_path.exists():
        return {"setup": setup, "code": code, "expected": expected, "run_dir": None, "verdict": None,
                "failure_seen": None, "brief": "not run", "seen": "the run did not finish", "errors": {}}
    summary = read_json(summary_path)
    finding = scenario.rule(summary)
    seen = finding.seen if half == FAULTY else explain_expected(finding.seen, scenario.expected_in_fixed)
    return {"setup": setup, "code": code, "expected": expected, "run_dir": run["run_dir"],
            "verdict": summary["verdict"], "failure_seen": finding.present, "brief": finding.brief, "seen": seen,
            "errors": error_examples(folder / run["run_dir"])}


def explain_expected(seen: str, expected: Mapping[str, str]) -> str:
    """The fixed half's observations, each figure it shows by design followed by why it is expected."""
    parts = seen.split("; ")
    for n, part in enumerate(parts):
        why = next((reason for words, reason in expected.items() if words in part), None)
        if why:
            parts[n] = f"{part} (expected: {why})"
    return "; ".join(parts)


def _seen_word(present: bool | None) -> str:
    return {True: "failure seen", False: "failure not seen", None: "not measured"}[present]


def report_lines(record: dict[str, Any]) -> list[str]:
    """scenario.txt: what the scenario reproduces, then each half's expectation and observation."""
    lines = [f"scenario {record['scenario']}: {record['reproduces']}"]
    for half in HALVES:
        h = record[half]
        lines += [f"{half}: {h['setup']}"]
        lines += [f"  code:     {h['code']}"] if h.get("code") else []
        lines += [
            f"  expected: {h['expected']}",
            f"  seen:     {h['seen']} -> {_seen_word(h['failure_seen'])}",
        ]
        lines += [f"  error:    {name}: {message}" for name, message in (h.get("errors") or {}).items()]
        lines += [f"  run:      {h['run_dir'] or '-'} (verdict {h['verdict'] or '-'})"]
    if record.get("single_change"):
        lines.append(f"the one change that fixes it: {record['single_change']}")
    lines.append(f"detected: {'yes' if record['detected'] else 'no'}")
    return lines


def table_lines(records: list[dict[str, Any]]) -> list[str]:
    """The closing table of `poolcheck scenario all`: scenario, faulty result, fixed result, detected."""
    rows = [("scenario", "faulty result", "fixed result", "detected")]
    rows += [(r["scenario"], r[FAULTY]["brief"], r[FIXED]["brief"], "yes" if r["detected"] else "no") for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def choose(names: list[str]) -> list[Scenario]:
    """The scenarios named, in order, once each; "all" is every one. ValueError names an unknown one."""
    from loadtests.scenarios.catalog import SCENARIOS

    return list(SCENARIOS) if "all" in names else [find(name) for name in dict.fromkeys(names)]


def run_scenarios(planned: list[tuple[Scenario, dict[str, RunConfig]]], *, echo: Echo = print) -> int:
    """Run planned scenarios one after the other and end with the table."""
    records, code = [], EXIT_PASS
    for scenario, configs in planned:
        result, record = run_scenario(scenario, configs, echo=echo)
        records.append(record)
        if result == EXIT_INTERRUPTED:
            code = EXIT_INTERRUPTED
            break
        code = max(code, result)
    for line in table_lines(records):
        echo(line)
    return code
