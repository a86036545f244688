"""The `clv` command line: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import sys

from clv import generate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clv",
        description="Customer-value forecasting with dbt, DuckDB and LightGBM.",
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    generate.add_arguments(
        subcommands.add_parser(
            "generate",
            help="write synthetic customer transactions (CSV or Parquet)",
            description=generate.__doc__,
        )
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"generate": generate.run}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
