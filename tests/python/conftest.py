"""Shared fixtures: run the real dbt project against a throwaway DuckDB file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).parent / "dbt"


@dataclass(frozen=True)
class DbtRun:
    returncode: int
    output: str
    database: Path

    def query(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.database), read_only=True) as connection:
            return connection.execute(sql).fetchall()


@pytest.fixture
def run_dbt(tmp_path: Path) -> Callable[..., DbtRun]:
    """Run a dbt command on the project with its own database, target and log folders."""

    def run(*args: str, variables: dict | None = None) -> DbtRun:
        database = tmp_path / "warehouse.duckdb"
        env = {
            **os.environ,
            "CLV_DUCKDB_PATH": str(database),
            "DBT_TARGET_PATH": str(tmp_path / "target"),
            "DBT_LOG_PATH": str(tmp_path / "logs"),
            "DBT_USE_COLORS": "false",
        }
        command = [str(DBT), *args, "--profiles-dir", str(PROJECT_DIR)]
        if variables:
            command += ["--vars", json.dumps(variables)]
        completed = subprocess.run(
            command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=600
        )
        return DbtRun(completed.returncode, completed.stdout + completed.stderr, database)

    return run
