"""The dbt CLI as the benchmarks run it: in a subprocess (timed as a user would see it),
against the benchmark's own warehouse, target and log folders, so a benchmark never
touches the project's data/ or target/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]


def run_dbt(arguments: list[str], variables: dict, database: Path, folder: Path) -> float:
    """`dbt ARGUMENTS --vars VARIABLES` on DATABASE; returns the wall time in seconds.

    target/ and logs/ go under FOLDER (run_results.json is FOLDER/target/). A failed
    command ends the benchmark with the tail of dbt's output.
    """
    env = {
        **os.environ,
        "CLV_DUCKDB_PATH": str(database),
        "DBT_TARGET_PATH": str(folder / "target"),
        "DBT_LOG_PATH": str(folder / "logs"),
    }
    command = [
        str(Path(sys.executable).parent / "dbt"),
        *arguments,
        "--profiles-dir",
        str(PROJECT_DIR),
        "--vars",
        json.dumps(variables),
    ]
    started = time.perf_counter()
    completed = subprocess.run(
        command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        sys.exit(f"dbt {arguments[0]} failed:\n{completed.stdout[-4000:]}")
    return time.perf_counter() - started
