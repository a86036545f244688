"""Customer-value forecasting: the Python logic behind the dbt project."""

import os

# LightGBM's OpenMP threads spin while they wait. Next to DuckDB's threads on a busy
# machine that spinning starved training 10-30x (50 rounds: 0.5 s passive, 4-13 s
# active, 2 threads, 2 cores). Must be set before lightgbm loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# SciPy's own OpenBLAS (loaded with scipy, after this) runs L-BFGS-B's linear algebra on
# 4-parameter vectors in a thread per core whose waiting starves the main thread: one
# thread fitted a 10M build's 18 BTYD dates in 2.4 s against 8.6 s (2 cores).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
