"""Render the self-contained HTML report from the rpt_ tables, as one row of the warehouse."""

import datetime as dt

import pandas as pd

from clv.engine import as_model_result, select, to_pandas, where
from clv.report import CHARTS, render_report


def model(dbt, session):
    dbt.config(materialized="table")
    # Vars reach a Python model through meta (see _python_models.yml).
    settings = dbt.config.get("meta")
    # dbt reads refs from literal calls, so each table is named here; the renames map
    # warehouse column names onto the renderer's.
    deciles = where(dbt.ref("rpt_backtest_deciles"), "status = 'ok'")
    tables = {
        "rpt_transactions_monthly": select(
            dbt.ref("rpt_transactions_monthly"),
            "month_start_date as month",
            "transaction_count as transactions",
            "customer_count as customers",
            "revenue",
            "is_partial_month",
        ),
        "rpt_order_value_distribution": dbt.ref("rpt_order_value_distribution"),
        "rpt_cohorts": dbt.ref("rpt_cohorts"),
        "rpt_forecast_distribution": dbt.ref("rpt_forecast_distribution"),
        "rpt_prediction_summary": dbt.ref("rpt_prediction_summary"),
        "rpt_forecast_total": dbt.ref("rpt_forecast_total"),
        "rpt_top_customers": where(dbt.ref("rpt_top_customers"), "value_rank <= 20"),
        "rpt_backtest_deciles": deciles,
        "rpt_backtest_metrics": dbt.ref("rpt_backtest_metrics"),
        "rpt_backtest_gain": dbt.ref("rpt_backtest_gain"),
        "rpt_backtest_buyers_by_frequency": dbt.ref("rpt_backtest_buyers_by_frequency"),
        "rpt_purchase_probability_matrix": dbt.ref("rpt_purchase_probability_matrix"),
        "rpt_backtest_reliability": where(dbt.ref("rpt_backtest_reliability"), "status = 'ok'"),
        "rpt_forecast_accuracy_over_time": dbt.ref("rpt_forecast_accuracy_over_time"),
        "rpt_feature_importance": dbt.ref("rpt_feature_importance"),
        "rpt_data_quality": select(
            dbt.ref("rpt_data_quality"), "category", "rejection_reason", "row_count as rows"
        ),
    }
    generated_at = dt.datetime.now(dt.UTC)
    html = render_report(
        {name: to_pandas(table) for name, table in tables.items()},
        currency=settings["currency"] or None,
        generated_at=generated_at,
    )
    # A model builds a table, never a file: `clv export` writes this row as report.html.
    return as_model_result(
        session,
        pd.DataFrame(
            {
                "generated_at": [generated_at.replace(tzinfo=None)],
                "charts": [len(CHARTS)],
                "html": [html],
            }
        ),
    )
