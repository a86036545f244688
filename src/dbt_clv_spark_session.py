"""A stopgap dbt plugin: run dbt-spark's Python models in dbt's own SparkSession.

dbt-spark 1.11 submits Python models only to Databricks (`all_purpose_cluster`,
`job_cluster`); with `method: session` there is nowhere to send them. Upstream
proposes a `session` submission method (dbt-labs/dbt-spark PR #1063, unmerged).
Until it lands, this module adds one. dbt imports every top-level `dbt_*` module it
can see and instantiates the classes in its `plugins` list; `initialize` registers
the helper. It touches dbt-spark's internals, which is why requirements pin
dbt-spark exactly. Delete this file when dbt-spark ships the method.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from dbt.plugins.manager import dbtPlugin

SUBMISSION_METHOD = "session"


class SessionPythonJobHelper:
    """Runs a compiled Python model in the SparkSession that dbt's SQL runs in."""

    def __init__(self, parsed_model: dict, credentials: Any) -> None:
        self.identifier = parsed_model["alias"]

    def submit(self, compiled_code: str) -> None:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        # The compiled code ends in dbt-spark's own wrapper: it calls model(dbt, spark)
        # and saves the result as the model's table.
        code = compile(compiled_code, f"<python model {self.identifier}>", "exec")
        exec(code, {"spark": spark, "__name__": "__dbt_python_model__"})


class SparkSessionSubmission(dbtPlugin):
    def initialize(self) -> None:
        try:
            from dbt.adapters.spark.impl import SparkAdapter
        except ImportError:  # dbt-spark is not installed: nothing to extend
            return
        # Spark's Python workers start the interpreter named here; without it they run
        # whatever `python3` is first on PATH, which lacks this project's packages.
        # A cluster names its own (spark.pyspark.python), which takes precedence.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        helpers = SparkAdapter.python_submission_helpers
        if SUBMISSION_METHOD in helpers.fget(None):
            return  # dbt-spark has its own now; this stopgap steps aside

        def with_session(adapter: Any) -> dict:
            return {**helpers.fget(adapter), SUBMISSION_METHOD: SessionPythonJobHelper}

        SparkAdapter.python_submission_helpers = property(with_session)


plugins = [SparkSessionSubmission]
