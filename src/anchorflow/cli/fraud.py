"""`anchorflow fraud`: run the rule catalogue, print the report, evaluate against a truth table,
list the rules."""

from __future__ import annotations

import csv
import json as jsonlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from anchorflow.cli.base import (
    PlainHelp,
    ProjectOption,
    _with_pipeline,
    app,
    console,
    day_option,
    guarded,
)
from anchorflow.errors import ConfigError

fraud_app = typer.Typer(
    help="Fraud rules over clicks, registrations and events: run them, report, evaluate.",
    cls=PlainHelp,
    no_args_is_help=True,
)
app.add_typer(fraud_app, name="fraud")

FromOption = Annotated[
    str | None, typer.Option("--from", help="First UTC day, YYYY-MM-DD (default: see help).")
]
ToOption = Annotated[str | None, typer.Option("--to", help="Last UTC day, YYYY-MM-DD.")]


@fraud_app.command("run")
def run(
    rule: Annotated[
        list[str] | None, typer.Option("--rule", help="Run only this rule (repeatable).")
    ] = None,
    start: FromOption = None,
    end: ToOption = None,
    project: ProjectOption = None,
) -> None:
    """Run the enabled rules over whole UTC days and merge what they find into fraud.*.

    Without --from/--to each rule runs from the last day it ran over (which may have been
    partial) to the newest day in its inputs; a re-run of a window adds nothing twice. A rule
    whose inputs are not mapped or lack a column it reads is skipped with one line."""
    from anchorflow.console import print_fraud_run, print_rule_run

    first, last = day_option("--from", start), day_option("--to", end)
    result = _with_pipeline(
        project, lambda p: p.fraud(first, last, rule or (), lambda r: print_rule_run(console, r))
    )
    print_fraud_run(console, result)


@fraud_app.command("report")
def report(
    start: FromOption = None,
    end: ToOption = None,
    top: Annotated[int | None, typer.Option("--top", help="Only the N rows with most fraud.")] = 20,
    fmt: Annotated[
        str, typer.Option("--format", help="table, csv or json.", case_sensitive=False)
    ] = "table",
    project: ProjectOption = None,
) -> None:
    """The fraud report per country × campaign × sub-campaign over a date range: clicks,
    registrations, events, how many of each are fraud (each counted once across rules; shadow
    rules count nowhere), the fraud rate, and the users each rule flagged. Reads the views
    fraud.report and fraud.report_by_rule that `fraud run` keeps."""
    from anchorflow.console import print_table
    from anchorflow.fraud.report import report_rows

    if fmt.lower() not in ("table", "csv", "json"):
        raise typer.BadParameter("expected table, csv or json", param_hint="--format")
    first, last = day_option("--from", start), day_option("--to", end)
    columns, rows = _with_pipeline(
        project, lambda p: report_rows(p.warehouse, first, last, top or None), read_only=True
    )
    if not columns:
        guarded(lambda: _fail_no_report())
    if fmt.lower() == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    elif fmt.lower() == "json":
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        sys.stdout.write(jsonlib.dumps(records, default=str, indent=2) + "\n")
    else:
        shown = [[f"{v:.2%}" if c == "fraud_rate" and v is not None else v
                  for c, v in zip(columns, row, strict=True)] for row in rows]  # fmt: skip
        print_table(console, "fraud report", columns, shown)


def _fail_no_report() -> None:
    raise ConfigError(["fraud report: no report yet; run `anchorflow fraud run` first"])


@fraud_app.command("evaluate")
def evaluate(
    truth: Annotated[
        Path, typer.Option("--truth", help="The truth directory the synthetic traffic wrote.")
    ],
    rerun: Annotated[
        bool,
        typer.Option(
            "--rerun/--no-rerun",
            help="Run each rule again over its last window and check that nothing changed.",
        ),
    ] = True,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    project: ProjectOption = None,
) -> None:
    """Precision, recall and F1 per rule and overall (users and events), the recall of each
    rule on each labelled pattern, the false-positive rate on the hard negatives, and a
    checksum of fraud.* before and after re-running the same windows (it must not change)."""
    from anchorflow.console import print_evaluation

    if not (truth / "users.parquet").is_file():
        raise typer.BadParameter(f"{truth} has no users.parquet", param_hint="--truth")
    result = _with_pipeline(project, lambda p: p.fraud_evaluate(truth, rerun))
    if json:
        from anchorflow.run.results import as_json

        sys.stdout.write(jsonlib.dumps(as_json(result), indent=2) + "\n")
    else:
        print_evaluation(console, result)


@fraud_app.command("rules")
def rules(project: ProjectOption = None) -> None:
    """The rule catalogue as this project sees it: built-in rules, the project's rules/,
    and for each whether it runs, in shadow mode, or lacks an input."""
    from anchorflow.console import print_table

    listed = _with_pipeline(project, lambda p: p.fraud_rules(), read_only=True)
    print_table(
        console,
        "fraud rules",
        ["rule", "version", "severity", "flags", "state", "description"],
        [[r.slug, r.version, r.severity, ", ".join(r.flags), r.state, r.description]
         for r in listed],
    )  # fmt: skip
