"""Shared fixtures: run the real dbt project against a throwaway DuckDB file."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from hypothesis import settings

# Property tests: `ci` is the default (repeatable: derandomized), `thorough` for local runs
# (HYPOTHESIS_PROFILE=thorough make test-python). Examples run whole dbt builds: no deadline.
settings.register_profile("ci", max_examples=8, derandomize=True, deadline=None)
settings.register_profile("thorough", max_examples=60, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

PROJECT_DIR = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).parent / "dbt"
CLV = Path(sys.executable).parent / "clv"


@dataclass(frozen=True)
class DbtRun:
    returncode: int
    output: str
    database: Path

    def query(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.database), read_only=True) as connection:
            return connection.execute(sql).fetchall()


def dbt_runner(folder: Path) -> Callable[..., DbtRun]:
    """Run dbt commands on the project with a database, target and log folders in folder."""

    def run(*args: str, variables: dict | None = None, database: str = "warehouse") -> DbtRun:
        database_path = folder / f"{database}.duckdb"
        env = {
            **os.environ,
            "CLV_DUCKDB_PATH": str(database_path),
            "DBT_TARGET_PATH": str(folder / "target"),
            "DBT_LOG_PATH": str(folder / "logs"),
            "DBT_USE_COLORS": "false",
        }
        command = [str(DBT), *args, "--profiles-dir", str(PROJECT_DIR)]
        if variables:
            command += ["--vars", json.dumps(variables)]
        completed = subprocess.run(
            command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=600
        )
        return DbtRun(completed.returncode, completed.stdout + completed.stderr, database_path)

    return run


@pytest.fixture
def run_dbt(tmp_path: Path) -> Callable[..., DbtRun]:
    return dbt_runner(tmp_path)


# Under pytest-xdist each worker runs `clv` in its own dbt target and log folders, so two
# builds at once never share dbt's partial parse or compiled files.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")


def clv(*args: str, database: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `clv` command with its own warehouse."""
    env = {**os.environ, "CLV_DUCKDB_PATH": str(database)}
    if WORKER:
        env |= {
            "DBT_TARGET_PATH": str(PROJECT_DIR / "target" / WORKER),
            "DBT_LOG_PATH": str(PROJECT_DIR / "logs" / WORKER),
        }
    return subprocess.run(
        [str(CLV), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


@pytest.fixture(scope="module")
def transactions(tmp_path_factory) -> Path:
    """Real transactions, so that code without the checks under test would run to the end."""
    from clv.generate import generate_transactions, write_transactions

    path = tmp_path_factory.mktemp("cli") / "transactions.csv"
    generated = generate_transactions(customers=500, seed=21, end_date=dt.date(2025, 12, 31))
    write_transactions(generated.transactions, path)
    return path
