"""Write the output folder from the warehouse alone.

`clv export --output DIR [--model-version V]` writes what a run produced: the forecasts
(predictions.parquet and .csv), each customer's top drivers of those forecasts
(drivers.parquet), every rpt_ table as Parquet under reports/, report.html,
the model version's files under models/<version>/ (one LightGBM file per booster and
btyd.json, the BTYD fit of their base), and run.json, written
last. `clv run` calls it after `dbt build`; on its own it re-exports a warehouse without
rebuilding. With --model-version V, the forecasts are V's latest scoring run (from
customer_predictions_history) and the booster files V's; by default, the current
forecasts and the version that made them.

DIR follows the rules of every output folder (clv.output_folder): new, empty or written
by clv before; it is assembled beside DIR and swapped in at the end.

Exit codes: 0 done; 1 the export failed; 2 bad usage or bad input (a refused folder, no
warehouse or forecasts, an unknown model version).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from importlib import metadata
from pathlib import Path

from clv import output_folder
from clv.errors import InputRefused, RunError
from clv.output_folder import RefusedPath

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_DATABASE = PROJECT_DIR / "data" / "warehouse.duckdb"
PACKAGES = ("clv", "dbt-core", "dbt-duckdb", "duckdb", "lightgbm", "pandas")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, help="folder to write (see above)")
    parser.add_argument(
        "--model-version",
        metavar="V",
        help="export this registered version's latest forecasts and boosters",
    )


def warehouse_path() -> Path:
    return Path(os.environ.get("CLV_DUCKDB_PATH", DEFAULT_DATABASE)).resolve()


def sql_string(path: Path) -> str:
    """A path as a SQL string literal: the output folder's name may hold a quote."""
    return "'" + str(path).replace("'", "''") + "'"


def write_contents(connection, folder: Path, model_version: str | None) -> dict:
    """Write every file of an output folder but run.json into folder; returns its facts."""
    from clv.registry import write_model_files
    from clv.report import write_report

    tables = [
        name
        for (name,) in connection.execute(
            # The warehouse's own: a build in this process may have attached others
            # (the input's header cache, macros/transactions_input.sql).
            "select table_name from information_schema.tables"
            " where table_catalog = current_database() and table_schema = 'main'"
            " order by table_name"
        ).fetchall()
    ]
    if "customer_predictions" not in tables:
        raise InputRefused("the warehouse has no forecasts yet: run clv run first")
    [(current_version,)] = connection.execute(
        "select max(model_version) from customer_predictions"
    ).fetchall()
    version = model_version or current_version
    if version == current_version:
        forecasts, parameters = "select * from customer_predictions", None
    else:
        # The version's latest scoring run: the history has customer_predictions' columns.
        forecasts = (
            "select * from customer_predictions_history"
            " where model_version = $version and scored_at = ("
            " select max(scored_at) from customer_predictions_history"
            " where model_version = $version)"
        )
        parameters = {"version": version}
    registry = connection.execute(
        "select * from model_registry where model_version = ?", [version]
    ).df()
    if registry.empty:
        raise InputRefused(f"model version {version!r} is not in model_registry")
    relation = connection.sql(forecasts, params=parameters)
    [(as_of_date, customers)] = relation.aggregate("max(as_of_date), count(*)").fetchall()
    relation.write_parquet(str(folder / "predictions.parquet"))
    relation.write_csv(str(folder / "predictions.csv"), header=True)
    if version == current_version and "customer_prediction_drivers" in tables:
        # Only drivers of these very forecasts: with var prediction_drivers off, the
        # table left by an earlier run describes another run.
        drivers = connection.sql(
            "select * from customer_prediction_drivers where as_of_date = $as_of"
            " and model_version = $version",
            params={"as_of": as_of_date, "version": version},
        )
        if drivers.aggregate("count(*)").fetchall()[0][0]:
            drivers.write_parquet(str(folder / "drivers.parquet"))

    (folder / "reports").mkdir()
    for name in tables:
        if name.startswith("rpt_") and name != "rpt_html_report":
            connection.execute(
                f'copy "{name}" to {sql_string(folder / "reports" / f"{name}.parquet")}'
                " (format parquet)"
            )
    if "rpt_html_report" in tables:
        [(html,)] = connection.execute("select html from rpt_html_report").fetchall()
        write_report(html, folder / "report.html")
    [btyd_fit] = (
        connection.execute(
            "select * exclude (purpose) from btyd_fits where btyd_fit_id = ? limit 1",
            [registry["btyd_fit_id"].iloc[0]],
        )
        .df()
        .to_dict("records")
    )
    write_model_files(registry, btyd_fit, folder / "models" / version)
    row_counts = {
        name: connection.execute(f'select count(*) from "{name}"').fetchall()[0][0]
        for name in tables
    }
    return {
        "as_of_date": str(as_of_date),
        "model_version": version,
        # How spend given a purchase is forecast: its quantile boosters, or BTYD's and why.
        "spend_model": registry["spend_model"].iloc[0] if "spend_model" in registry else None,
        # Where the quantile levels were calibrated (model_registry.calibration).
        "calibration": registry["calibration"].iloc[0] if "calibration" in registry else None,
        # The seasonal level applied, or why none was learned (model_registry.season).
        "season": registry["season"].iloc[0] if "season" in registry else None,
        "customers": customers,
        "row_counts": row_counts,
    }


def export_folder(
    database: Path, output: Path, model_version: str | None = None, run_details: dict | None = None
) -> dict:
    """Write output from the warehouse, swapped in whole; returns run.json's content."""
    import duckdb

    output_folder.check_output_folder(output, [])
    staging = output_folder.make_staging(output)
    try:
        # dbt-duckdb may hold the database open in this process (clv run); DuckDB shares
        # it only with connections of the same configuration, so not read_only here.
        with duckdb.connect(str(database)) as connection:
            facts = write_contents(connection, staging, model_version)
        summary = {
            "status": "complete",
            **(run_details or {}),
            **facts,
            "exported_at": dt.datetime.now(dt.UTC).isoformat(),
            "versions": {package: metadata.version(package) for package in PACKAGES},
        }
        # Written last: its presence is what says the folder is complete.
        (staging / "run.json").write_text(json.dumps(summary, indent=2, default=str))
        output_folder.write_marker(staging)
        try:  # again: the folder may have changed while this was written
            output_folder.check_output_folder(output, [])
        except RefusedPath as error:
            kept, staging = staging, None  # the results stay where the user can find them
            raise RunError(f"{error}; the exported folder is {kept}") from error
        try:
            kept = output_folder.swap_into_place(staging, output)
        except OSError as error:
            raise RunError(f"could not move the results into {output}: {error}") from error
        staging = None
        if kept is not None:
            print(
                f"clv: the previous {output} now holds files clv did not write,"
                f" so it was kept as {kept}",
                file=sys.stderr,
            )
        return summary
    finally:
        if staging is not None and staging.exists():
            output_folder.discard_staging(staging)


def run(args: argparse.Namespace) -> int:
    output = Path(args.output).resolve()
    database = warehouse_path()
    try:
        if not database.exists():
            raise InputRefused(f"no warehouse at {database}: run clv run first")
        output_folder.check_warehouse(database, output)
        summary = export_folder(database, output, args.model_version)
    except RunError as error:
        print(f"clv export failed: {error}", file=sys.stderr)
        return error.exit_code
    print(
        f"exported {summary['customers']:,} forecasts at {summary['as_of_date']}"
        f" (model {summary['model_version']}) into {output}"
    )
    return 0
