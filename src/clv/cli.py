"""The `clv` command line: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import os
import sys
from importlib import metadata

from clv import export, generate, publish, run
from clv.redis_publish import mask_url

ENVIRONMENT = """\
environment variables:
  CLV_DUCKDB_PATH  the warehouse file (default: data/warehouse.duckdb in the project)
  CLV_DUCKDB_MEMORY_LIMIT  DuckDB's memory limit, beyond which it spills to disk
                   (default 1.5GB; e.g. 8GB on a large machine)
  CLV_SPARK_MASTER  with --engine spark: where Spark runs (default local[*])
  CLV_SPARK_DIR    with --engine spark: the Spark warehouse and metastore (default data/spark)
  REDIS_URL        where --publish-redis and clv publish publish when given no URL
  AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, ...  dynamodb:// stores: boto3's usual chain
  CLV_DEBUG        set to 1 to see the traceback of an unexpected failure

exit codes: 0 done; 1 the build failed; 2 bad usage or bad input; 3 the outputs are
complete but publishing failed: `clv publish` retries it (see clv run --help)"""


# Each subcommand is a module with add_arguments(parser) and run(args) -> exit code.
SUBCOMMANDS = {
    "generate": (generate, "write synthetic customer transactions (CSV or Parquet)"),
    "run": (run, "run the whole batch job on a transactions file (dbt build + outputs)"),
    "export": (export, "write the output folder of the last run from the warehouse alone"),
    "publish": (publish, "publish a completed run's forecasts to Redis or DynamoDB, no rebuild"),
}


# Where a store URL goes, for one given without its flag.
STORE_FLAGS = {"publish": "--to", "run": "--publish"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clv",
        description="Customer-value forecasting with dbt, DuckDB and LightGBM.",
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"clv {metadata.version('clv')}")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, summary) in SUBCOMMANDS.items():
        module.add_arguments(
            subcommands.add_parser(
                name,
                help=summary,
                description=module.__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
        )
    return parser


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The arguments; one a subcommand does not take is named by that subcommand (argparse
    names it with the top-level usage), and a store URL given alone is shown its flag."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        [subcommand] = [
            action.choices[args.command]
            for action in parser._subparsers._group_actions  # noqa: SLF001 - argparse's own
        ]
        shown = [mask_url(text) if "://" in text else text for text in unknown]
        flag = STORE_FLAGS.get(args.command)
        urls = [text for text in shown if "://" in text]
        hint = f" (a store URL goes after {flag}: {flag} {urls[0]})" if flag and urls else ""
        subcommand.error(f"unrecognized arguments: {' '.join(shown)}{hint}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        return SUBCOMMANDS[args.command][0].run(args)
    except Exception as error:  # noqa: BLE001 - the last line of defence for a CLI
        if os.environ.get("CLV_DEBUG"):
            raise
        print(f"clv {args.command}: {type(error).__name__}: {error}", file=sys.stderr)
        print("(set CLV_DEBUG=1 to see the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
