"""Run the whole batch job on a transactions file: build, export, optionally publish.

`clv run --input FILE --output DIR` validates the file, builds features, trains (unless
--score-only), scores and tests with dbt, which builds tables only, then exports DIR
from the warehouse as `clv export` does: predictions as Parquet and CSV, every rpt_
table as Parquet, the HTML report, the booster files and run.json. DIR is assembled
beside it and swapped in at the end, so a failed run never leaves a folder that looks
complete. With --publish URL (redis://, rediss:// or dynamodb://TABLE_PREFIX), the
forecasts then go to the live app's store, as `clv publish` sends them; --publish-redis
[URL] is kept as the same with a Redis URL ($REDIS_URL without one). If publishing
fails, DIR and the warehouse are already complete and the previously published run
keeps being served: `clv publish` retries it without a rebuild.

DIR must be a new folder, an empty one, or one that clv run wrote before: each output
folder holds a file .clv-output listing what the tool wrote, and a folder holding
anything else is refused. The warehouse (CLV_DUCKDB_PATH, default data/warehouse.duckdb)
must be a DuckDB file outside DIR and not one of the input files. These checks run
before dbt starts. With --engine spark the warehouse is dbt's spark target instead
(CLV_SPARK_MASTER, CLV_SPARK_DIR), and DIR is exported from its tables.

Exit codes (one line on stderr says why):
  0  done
  1  the build failed
  2  bad usage or bad input: a missing file or column, a refused flag, var, output
     folder or warehouse, an input with nothing to forecast; nothing was replaced
  3  DIR and the warehouse are complete but publishing failed: rerun to publish
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from clv import export, output_folder, publish, settings
from clv.errors import InputRefused, RunError

PROJECT_DIR = Path(__file__).resolve().parents[2]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input", required=True, help="transactions file: CSV or Parquet, or a glob of them"
    )
    parser.add_argument(
        "--output", required=True, help="folder for predictions, reports, boosters and run.json"
    )
    parser.add_argument(
        "--as-of", metavar="DATE", help="forecast date YYYY-MM-DD (default: last transaction date)"
    )
    parser.add_argument(
        "--horizon-days",
        type=int,
        metavar="N",
        help="days forecast after the as-of date (default 90)",
    )
    parser.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        default="duckdb",
        help="where the warehouse is: duckdb (default, the file CLV_DUCKDB_PATH) or spark"
        " (dbt's spark target; CLV_SPARK_MASTER, default local[*])",
    )
    parser.add_argument(
        "--score-only",
        action="store_true",
        help="score with the latest registered model instead of training a new one",
    )
    parser.add_argument(
        "--publish",
        metavar="URL",
        help="then publish the forecasts: redis://, rediss:// or dynamodb://TABLE_PREFIX"
        " (as clv publish does)",
    )
    parser.add_argument(
        "--publish-redis",
        nargs="?",
        const=os.environ.get("REDIS_URL", ""),
        metavar="URL",
        help="the same as --publish with a Redis URL; without URL, $REDIS_URL",
    )
    parser.add_argument("--redis-prefix", default="clv", help="key prefix in Redis (default: clv)")
    parser.add_argument(
        "--vars",
        default="{}",
        metavar="YAML",
        help="more dbt vars, e.g. '{amount_column: total}' (every var: docs/input.md)",
    )


@dataclass
class Progress:
    """Prints one line per finished model, test or seed as dbt reports it."""

    finished: list[dict] = field(default_factory=list)
    # dbt reports from its threads: two lines printed at once ran together.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, event) -> None:
        if event.info.name != "NodeFinished":
            return
        node = event.data.node_info
        status = node.node_status
        seconds = (
            (
                dt.datetime.fromisoformat(node.node_finished_at)
                - dt.datetime.fromisoformat(node.node_started_at)
            ).total_seconds()
            if node.node_started_at and node.node_finished_at
            else 0.0
        )
        self.finished.append({"node": node.unique_id, "status": status, "seconds": seconds})
        # What a failure skipped follows from the one line that says why it failed.
        shown = node.resource_type == "model" and status in ("success", "error")
        if shown or status in ("fail", "warn"):
            with self.lock:
                print(f"  {status:<8} {node.node_name:<45} {seconds:6.1f} s", flush=True)


def dbt_vars(args: argparse.Namespace) -> dict:
    import yaml

    example = "'{amount_column: total}'"
    try:
        variables = yaml.safe_load(args.vars)
    except (yaml.YAMLError, ValueError) as error:  # ValueError: a date such as 2025-13-01
        problem = getattr(error, "problem", None) or str(error) or "unreadable"
        raise InputRefused(
            f"--vars is not valid YAML ({problem}): write a mapping such as {example}"
        ) from error
    variables = {} if variables is None else variables
    if not isinstance(variables, dict):
        raise InputRefused(f"--vars must be a mapping such as {example}, got {args.vars!r}")
    variables["transactions_path"] = str(Path(args.input).resolve())
    # A flag and the var it sets share one rule, and the flag wins.
    flags = {"as_of_date": args.as_of, "horizon_days": args.horizon_days}
    try:
        variables = settings.check_vars(variables, project_var_defaults())
        for name, value in flags.items():
            if value is not None:
                variables[name] = settings.check_value(name, value, settings.FLAGS[name])
    except settings.SettingsError as error:
        raise InputRefused(str(error)) from error
    return variables


def project_var_defaults() -> dict:
    import yaml

    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    return project.get("vars", {})


# A character no number holds, whatever the vars: not a digit, sign, mark or space (spelt
# out, as RE2's \s and Python's differ on no-break spaces): a symbol beside the amounts.
NOT_IN_A_NUMBER = "[^0-9.,' \t\u00a0\u202f+-]"

NUMBER_COLUMNS = {
    "non_numeric_amount": "amount_raw",
    "non_numeric_unit_price": "unit_price_raw",
    "non_numeric_quantity": "quantity_raw",
}


# The numbers a currency symbol is read beside (var currency_symbol): not quantities.
MONEY_REASONS = ("non_numeric_amount", "non_numeric_unit_price")


def rejected_numbers(reasons: Iterable[str]) -> str:
    """SQL: the rows rejected for these non_numeric_ reasons, each field's text as `value`."""
    return (
        "("
        + " union all ".join(
            f"select rejection_reason, {NUMBER_COLUMNS[reason]} as value, source_file,"
            f" source_row_number from rejected_transactions where rejection_reason = '{reason}'"
            for reason in reasons
        )
        + ")"
    )


def input_warnings(database: Path, variables: dict) -> list[str]:
    """Sentences about the input (its rows, and a history too short to backtest on) that a
    run which succeeded should still say."""
    import duckdb

    settings = {**project_var_defaults(), **variables}
    decimal, thousands = settings["decimal_separator"], settings["thousands_separator"]
    # The mark the vars leave unread: a thousands separator, or a decimal mark unset.
    other = "," if decimal == "." else "."
    with duckdb.connect(str(database)) as connection:
        try:
            counts = connection.execute(
                "select rejection_reason, row_count from rpt_data_quality"
                " where category = 'rejected' order by 2 desc, 1"
            ).fetchall()
            rows = connection.execute(
                "select row_count from rpt_data_quality where category = 'raw'"
            ).fetchone()[0]
        except duckdb.CatalogException:  # a build without the report
            return []
        try:
            misread = connection.execute(
                "select rejection_reason, count(*), min(trim(value))"
                f" from {rejected_numbers(NUMBER_COLUMNS)}"
                " where contains(value, ?) group by 1 order by 2 desc, 1 limit 1",
                [other],
            ).fetchone()
            symbolic = connection.execute(
                # The example is the file's first, as the refusal's is: the symbol most
                # rows hold, not an odd one that sorts first.
                "select rejection_reason, count(*),"
                " arg_min(trim(value), (source_file, source_row_number))"
                f" from {rejected_numbers(MONEY_REASONS)} where regexp_matches(value, ?)"
                # A value holding the symbol the var names was rejected for another reason.
                " and not contains(value, coalesce(?, chr(0)))"
                " group by 1 order by 2 desc, 1 limit 1",
                [NOT_IN_A_NUMBER, settings["currency_symbol"]],
            ).fetchone()
        except duckdb.CatalogException:  # Spark's copy leaves the rejected rows in Spark
            misread = symbolic = None
        try:
            unjudged = connection.execute(
                "select status_reason from rpt_backtest_metrics"
                " where model = 'lightgbm' and status_reason is not null"
            ).fetchone()
        except duckdb.CatalogException:  # a build without the backtest
            unjudged = None
    warnings = []
    rejected = sum(count for _, count in counts)
    if rejected:
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in counts[:3])
        more = f" and {len(counts) - 3} more reasons" if len(counts) > 3 else ""
        warnings.append(
            f"{rejected:,} of the {rows:,} rows ({rejected / rows:.1%}) were quarantined"
            f" ({reasons}{more}): each is in the table rejected_transactions with its reason"
        )
    copies = dict(counts).get("duplicate_transaction_id", 0)
    if rows and copies > rows / 2:
        column = settings["transaction_id_column"]
        # Most rows "copies" of an id: the id names an order whose lines are the rows.
        warnings.append(
            f"{copies:,} of the {rows:,} rows ({copies / rows:.0%}) were rejected as"
            f" duplicate_transaction_id: if the column {column!r} (var transaction_id_column)"
            f" names an order with one row per line, set the var order_id_column to {column!r}"
            " instead (and transaction_id_column to null), so that each order is one purchase"
            " of its lines"
        )
    if misread and thousands is None:
        reason, count, example = misread
        warnings.append(
            f"{count:,} of the {rows:,} rows were rejected as {reason} holding a {other!r}"
            f" (e.g. {example!r}): set the var thousands_separator to {other!r} if it groups"
            f" thousands, or decimal_separator to {other!r} if it marks decimals"
        )
    if symbolic:
        reason, count, example = symbolic
        symbol = re.search(NOT_IN_A_NUMBER + "+", example)[0]
        configured = settings["currency_symbol"]
        if configured:
            hint = f"the var currency_symbol is {configured!r}: two currencies are never added up"
        else:
            hint = f"set the var currency_symbol to {symbol!r} if every amount is in that currency"
        warnings.append(
            f"{count:,} of the {rows:,} rows were rejected as {reason} holding a symbol"
            f" such as {symbol!r} (e.g. {example!r}): {hint}"
        )
    if unjudged:
        # Said where the run ends, not only in the report: e.g. a horizon longer than the
        # history builds a forecast that no backtest has measured.
        reason = unjudged[0].rstrip(".")
        reason = reason[:1].lower() + reason[1:]
        warnings.append(f"no out-of-time backtest judged this model: {reason}")
    return warnings


HEADER_LINES = ("Compilation Error", "Runtime Error", "Database Error", ">", "compiled code at")


def first_useful_line(message: str) -> str:
    """The line of a dbt error that says what is wrong, without dbt's headers and context."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if any(line.startswith("Traceback") for line in lines):
        return lines[-1]  # a Python model's traceback ends with what went wrong
    useful = [line for line in lines if not line.startswith(HEADER_LINES)]
    return useful[0] if useful else (lines[0] if lines else "")


def failure_reason(result) -> str:
    """One line naming what failed: the model or test and the first line of its error."""
    if result.exception is not None:
        return first_useful_line(str(result.exception)) or "dbt could not start the build"
    for node in getattr(result.result, "results", []) or []:
        if str(node.status) in ("error", "fail", "runtime error"):
            detail = first_useful_line(node.message or "") or str(node.status)
            detail += memory_hint(detail)
            return f"{node.node.resource_type} {node.node.name} failed: {detail}"
    return "dbt build failed (see the log above)"


def memory_hint(detail: str) -> str:
    """Where DuckDB ran out of its memory limit, the variable that sets it; DuckDB's own
    advice (fewer threads, no insertion order) is not the user's to follow."""
    if not detail.startswith("Out of Memory Error"):
        return ""
    limit = os.environ.get("CLV_DUCKDB_MEMORY_LIMIT", "1.5GB")  # profiles.yml's default
    return (
        f"; DuckDB's memory limit (CLV_DUCKDB_MEMORY_LIMIT, now {limit}) is too low for this"
        " step: raise it and run again"
    )


def run_dbt(args: argparse.Namespace, variables: dict, progress: Progress) -> None:
    from dbt.cli.main import dbtRunner

    command = [
        "build",
        *(["--target", "spark"] if args.engine == "spark" else []),
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(PROJECT_DIR),
        "--vars",
        json.dumps(variables),
        # dbt's own console log repeats each error with its context; the progress
        # lines and the one-line reason are what a user reads (logs/dbt.log has all).
        "--log-level",
        "none",
    ]
    if args.score_only:
        command += ["--selector", "score"]
    result = dbtRunner(callbacks=[progress]).invoke(command)
    if not result.success:
        # The project's refusals of an input or a setting are compile-time errors
        # raised before a model is built (macros transactions_input, refuse_*).
        refused = any(
            str(node.message or "").startswith("Compilation Error")
            for node in getattr(result.result, "results", None) or []
            if str(node.status) == "error"
        )
        raise (InputRefused if refused else RunError)(failure_reason(result))


def publish_url(args: argparse.Namespace) -> str | None:
    """Where to publish after the build, refused before it starts when unusable."""
    if args.publish is not None and args.publish_redis is not None:
        raise InputRefused("give --publish or --publish-redis, not both")
    if args.publish_redis == "":
        raise InputRefused("--publish-redis needs a URL or the environment variable REDIS_URL")
    url = args.publish if args.publish is not None else args.publish_redis
    return None if url is None else publish.check_store(url)


def use_spark_on_this_machine() -> None:
    """Spark on this machine (the default master) binds to loopback and runs this Python.
    A master Spark cannot read is refused here: Spark itself stops with a Java stack
    trace and "Java gateway process exited"."""
    master = os.environ.get("CLV_SPARK_MASTER", "local")
    if not re.fullmatch(r"local(\[.+\])?|local-cluster\[.+\]|(spark|k8s)://.+|yarn", master):
        raise InputRefused(
            f"CLV_SPARK_MASTER={master!r} is not a Spark master: use local[*] (this machine),"
            " local[N], spark://HOST:PORT, k8s://URL or yarn"
        )
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def copy_from_spark(folder: Path) -> Path:
    """The Spark tables the exporter reads, in a DuckDB file in folder (a temporary one)."""
    from pyspark.sql import SparkSession

    from clv.engine import copy_spark_tables

    database = folder / "export.duckdb"
    spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    copy_spark_tables(spark, "clv", str(database))
    return database


def input_files(pattern: str) -> list[Path]:
    paths = sorted(Path(name).resolve() for name in glob.glob(pattern))
    if not paths:
        raise InputRefused(f"input file not found: {pattern}")
    # The reader takes the format from the pattern's extension (macro
    # transactions_file_format): Parquet read as CSV fails with a parser's state.
    if not pattern.lower().endswith((".parquet", ".pq")):
        for path in filter(Path.is_file, paths):
            with path.open("rb") as file:
                parquet = file.read(4) == b"PAR1"
            if parquet:
                raise InputRefused(
                    f"{path} is a Parquet file, but --input {pattern} is read as CSV: the format"
                    " comes from the extension, so name Parquet files by theirs (e.g."
                    " exports/*.parquet)"
                )
    return paths


def check_memory_limit() -> None:
    """CLV_DUCKDB_MEMORY_LIMIT as DuckDB reads it: refused here, naming the variable,
    rather than by dbt's first connection with DuckDB's words alone."""
    import duckdb

    limit = os.environ.get("CLV_DUCKDB_MEMORY_LIMIT")
    if limit is None:
        return
    try:
        duckdb.connect(config={"memory_limit": limit}).close()
    except duckdb.Error as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise InputRefused(
            f"CLV_DUCKDB_MEMORY_LIMIT={limit!r} is not a size DuckDB reads ({reason}):"
            " set it like 1.5GB or 8GB"
        ) from error


def check_model_fits(database: Path, variables: dict) -> None:
    """The version a run scores with (var model_version, or the latest for --score-only)
    must be registered, and forecasts the horizon and quantile levels it was trained
    for: refused here before dbt starts (customer_predictions refuses the same, on
    either engine, when dbt is run by hand)."""
    import duckdb

    from clv.scoring import version_does_not_fit

    run_settings = {**project_var_defaults(), **variables}
    named = run_settings.get("model_version")
    versions = []
    if database.exists():
        # No registry yet: no version.
        with (
            duckdb.connect(str(database), read_only=True) as connection,
            suppress(duckdb.CatalogException),
        ):
            versions = connection.execute(
                "select model_version, any_value(horizon_days), any_value(calibrated_levels)"
                " from model_registry group by 1 order by 1"
            ).fetchall()
    found = [row for row in versions if row[0] == named] if named else versions[-1:]
    if named and not found:
        known = ", ".join(version for version, *_ in versions) or "none yet"
        raise InputRefused(
            f"model_version {named} is not in the registry of {database} (known: {known})"
        )
    if not found or found[0][2] is None:
        return  # nothing registered (refused already), or of an earlier release: scoring says so
    [(version, horizon, levels)] = found
    refused = version_does_not_fit(
        version,
        (horizon, [float(level) for level in json.loads(levels)]),
        int(run_settings["horizon_days"]),
        run_settings["quantiles"],
    )
    if refused:
        raise InputRefused(refused)


def run(args: argparse.Namespace) -> int:
    started = time.time()
    output = Path(args.output).resolve()
    spark_copy = tempfile.TemporaryDirectory(prefix="clv-spark-export-")
    database = export.warehouse_path()
    os.environ["CLV_DUCKDB_PATH"] = str(database)
    try:
        # Everything that can be refused is refused here, before anything is written.
        inputs = input_files(args.input)
        variables = dbt_vars(args)
        store = publish_url(args)
        output_folder.check_output_folder(output, inputs)
        if args.engine == "spark":
            use_spark_on_this_machine()
        else:
            check_memory_limit()
            output_folder.check_warehouse(database, output, inputs, needs_model=args.score_only)
            if args.score_only or variables.get("model_version"):
                check_model_fits(database, variables)
        database.parent.mkdir(parents=True, exist_ok=True)
        mode = "scoring with the latest registered model" if args.score_only else "full build"
        print(f"clv run: {mode} of {args.input} into {output}", flush=True)
        progress = Progress()
        run_dbt(args, variables, progress)
        if args.engine == "spark":
            database = copy_from_spark(Path(spark_copy.name))
        warnings = input_warnings(database, variables)
        # The warehouse now holds everything the run produced; the folder is its export.
        summary = export.export_folder(
            database,
            output,
            run_details={
                "started_at": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(),
                "build_seconds": round(time.time() - started, 1),
                "vars": variables,
                "timings": progress.finished,
                "input_warnings": warnings,
            },
        )
        print(
            f"done: {summary['customers']:,} customers forecast at {summary['as_of_date']}"
            f" with model {summary['model_version']}; results in {output}"
        )
        for warning in warnings:
            print(f"note: {warning}.", flush=True)
        if store is not None:
            with publish.open_run(database, read_only=False) as found:
                print(publish.publish_run(store, found, args.redis_prefix), flush=True)
    except RunError as error:
        print(f"clv run failed: {error}", file=sys.stderr)
        return error.exit_code
    finally:
        spark_copy.cleanup()
    return 0
