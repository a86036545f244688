"""Customer-value forecasting: the Python logic behind the dbt project."""

import os

# LightGBM's OpenMP threads spin while they wait. Next to DuckDB's threads on a busy
# machine that spinning starved training 10-30x (50 rounds: 0.5 s passive, 4-13 s
# active, 2 threads, 2 cores). Must be set before lightgbm loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
