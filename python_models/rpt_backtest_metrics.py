"""Backtest metrics, one row per model and baseline, or the reason there is no backtest."""

from clv.backtest import metrics_table
from clv.engine import as_model_result, first_row, to_pandas, where
from clv.training import parse_quantiles


def model(dbt, session):
    dbt.config(materialized="table")
    settings = dbt.config.get("meta")
    quantiles = parse_quantiles(settings["quantiles"])
    first, as_of, horizon = first_row(
        dbt.ref("int_customer_features_as_of_date"),
        "min(first_transaction_date)",
        "max(as_of_date)",
        "max(horizon_days)",
    )
    reason = (
        f"The history from {first} to {as_of} ({(as_of - first).days} days) is too short for "
        f"an out-of-time backtest: it forecasts at as_of_date - {horizon} days and needs "
        f"{settings['min_training_history_days']} days of history plus a label window of "
        f"{min(int(settings['min_label_window_days']), horizon)} days before that date."
    )
    examples, buyers = first_row(
        where(dbt.ref("int_training_examples_labelled"), "purpose = 'backtest'"),
        "count(*)",
        "count(case when label_net_spend > 0 then 1 end)",
    )
    if examples and not buyers:
        reason = (
            f"No customer spent anything in a label window after the backtest's training"
            f" cutoffs (the history before as_of_date - {horizon} days; {examples:,} examples,"
            " every label 0): its boosters have nothing to learn."
        )
    metrics = metrics_table(to_pandas(dbt.ref("backtest_predictions")), quantiles, reason)
    return as_model_result(session, metrics)
