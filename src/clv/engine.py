"""The few relation operations the Python models need, on DuckDB and on Spark alike.

A dbt Python model gets a DuckDB relation from `dbt.ref` on DuckDB and a Spark
DataFrame on Spark. The models call these functions instead of either API, so each
model is one file for both engines. Expressions are SQL text that both engines read
the same way, written in the models, never built from a var or a flag.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa


def is_spark(relation: Any) -> bool:
    return type(relation).__module__.startswith("pyspark")


def select(relation: Any, *expressions: str) -> Any:
    if is_spark(relation):
        return relation.selectExpr(*expressions)
    return relation.select(", ".join(expressions))


def aggregate(relation: Any, *expressions: str) -> Any:
    """A one-row relation of aggregates over the whole relation."""
    if is_spark(relation):
        # Spark reads aggregate expressions in a projection as a global aggregate.
        return relation.selectExpr(*expressions)
    return relation.aggregate(", ".join(expressions))


def first_row(relation: Any, *expressions: str) -> tuple:
    """The one row of an aggregate over the relation, as a tuple."""
    if is_spark(relation):
        return tuple(relation.selectExpr(*expressions).first())
    [row] = relation.aggregate(", ".join(expressions)).fetchall()
    return row


def where(relation: Any, condition: str) -> Any:
    # Both APIs take a SQL condition as text.
    return relation.filter(condition)


def where_equals(relation: Any, column: str, value: str) -> Any:
    """Rows whose column equals a value; the value is compared, never pasted into SQL."""
    if is_spark(relation):
        from pyspark.sql import functions

        return relation.filter(functions.col(column) == functions.lit(value))
    import duckdb

    return relation.filter(duckdb.ColumnExpression(column) == duckdb.ConstantExpression(value))


def stable_sample(relation: Any, key: str, rows: int) -> Any:
    """At most rows rows, chosen by the md5 of a text key: the same rows on both engines
    and in every run, and unrelated to the key's own order (ids often follow sign-up)."""
    if is_spark(relation):
        from pyspark.sql import functions

        return relation.orderBy(functions.md5(functions.col(key))).limit(rows)
    return relation.order(f"md5({key})").limit(rows)


def union(first: Any, second: Any) -> Any:
    """Rows of both, matched by position."""
    return first.union(second)


def distinct_values(relation: Any, column: str) -> list:
    if is_spark(relation):
        return [row[0] for row in relation.select(column).distinct().collect()]
    return [row[0] for row in relation.select(column).distinct().fetchall()]


def to_pandas(relation: Any) -> pd.DataFrame:
    """The whole relation in memory: only for relations bounded in size (fits, samples)."""
    if is_spark(relation):
        frame = relation.toPandas()
        # Spark hands dates over as Python objects; DuckDB as datetime64, which the
        # package expects.
        for name, field in zip(relation.columns, relation.schema.fields, strict=True):
            if field.dataType.typeName() == "date":
                frame[name] = pd.to_datetime(frame[name])
        return frame
    return relation.df()


def missing_table_errors() -> tuple[type[Exception], ...]:
    """What dbt.ref raises, on either engine, for a table that does not exist yet."""
    errors: list[type[Exception]] = []
    try:
        import duckdb

        errors.append(duckdb.CatalogException)
    except ImportError:
        pass
    try:
        from pyspark.errors import AnalysisException

        errors.append(AnalysisException)
    except ImportError:
        pass
    return tuple(errors)


def as_model_result(session: Any, result: pd.DataFrame | pa.Table) -> Any:
    """What a Python model returns: the frame itself on DuckDB, a Spark DataFrame on Spark.

    On Spark the Arrow schema is kept as it is, so both engines build the same column types.
    """
    if not is_spark_session(session):
        return result
    table = (
        result
        if isinstance(result, pa.Table)
        else pa.Table.from_pandas(result, preserve_index=False)
    )
    return session.createDataFrame(table)


def is_spark_session(session: Any) -> bool:
    return type(session).__module__.startswith("pyspark")


def copy_spark_tables(spark: Any, schema: str, database: str) -> list[str]:
    """Copy the tables the exporter reads from Spark into a DuckDB file, one table at a time.

    The output folder is files on this machine, so its data passes through here anyway;
    the copy lets one exporter (clv.export) serve both engines. Each table travels as
    Arrow; the largest, customer_predictions, is one row per customer.
    """
    import duckdb

    wanted = {"customer_predictions", "model_registry", "btyd_fits"}
    names = [
        table.name
        for table in spark.catalog.listTables(schema)
        if table.tableType != "VIEW" and (table.name in wanted or table.name.startswith("rpt_"))
    ]
    with duckdb.connect(database) as connection:
        for name in sorted(names):
            arrow = spark.table(f"{schema}.{name}").toArrow()
            connection.register("spark_table", arrow)
            connection.execute(f'create or replace table "{name}" as select * from spark_table')
            connection.unregister("spark_table")
    return names
