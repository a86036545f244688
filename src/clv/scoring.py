"""Apply a registered model version to customer features, batch by batch.

A version is its boosters (model_registry rows) and the BTYD fit their base comes from
(the btyd_fits row the version names). Memory stays flat however many customers there
are: features stream through in Arrow record batches.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa

from clv.btyd import BtydModel
from clv.btyd_fits import model_from_row
from clv.features import (
    base_spend,
    btyd_forecasts,
    model_matrix,
    quantile_spend,
    require_columns,
)
from clv.progress import Progress

KEY_COLUMNS = ("customer_id", "as_of_date", "horizon_days")


@dataclass(frozen=True)
class ScoringModel:
    model_version: str
    feature_names: list[str]
    expected_spend: lgb.Booster
    prob_purchase: lgb.Booster
    quantiles: list[tuple[str, lgb.Booster, float]]  # column, booster, calibration scale
    btyd_fit_id: str
    btyd: BtydModel | None  # None: the naive rate is the base (see btyd_fits)

    @classmethod
    def from_registry(
        cls,
        registry: pd.DataFrame,
        btyd_fits: pd.DataFrame,
        model_version: str | None = None,
        known_versions: list[str] | None = None,
    ) -> ScoringModel:
        """The given version, or the most recently trained one, with its BTYD fit.

        btyd_fits holds rows of the btyd_fits table, the version's among them.
        known_versions names every registered version in the error message when the
        registry frame was already filtered down to one version.
        """
        if registry.empty and not known_versions:
            raise ValueError(
                "the model registry is empty: run the full build (dbt build) once to train a model"
            )
        if model_version is None:
            model_version = registry.sort_values("trained_at")["model_version"].iloc[-1]
        rows = registry[registry["model_version"] == model_version]
        if rows.empty:
            known = ", ".join(sorted(known_versions or registry["model_version"].unique()))
            raise ValueError(
                f"model_version {model_version} is not in the registry (known: {known})"
            )
        boosters = {
            row.target: (lgb.Booster(model_str=row.model_text), row)
            for row in rows.itertuples(index=False)
        }
        for target in ("expected_spend", "prob_purchase"):
            if target not in boosters:
                raise ValueError(f"model_version {model_version} has no {target} booster")
        fit_id = rows["btyd_fit_id"].iloc[0] if "btyd_fit_id" in rows else None
        if pd.isna(fit_id):
            raise ValueError(
                f"model_version {model_version} was registered before its BTYD fit was stored,"
                " so it cannot be scored reproducibly: run the full build (dbt build) to"
                " train a new version"
            )
        fit = btyd_fits[btyd_fits["btyd_fit_id"] == fit_id]
        if fit.empty:
            raise ValueError(
                f"model_version {model_version} rests on the BTYD fit {fit_id}, which is not"
                " in btyd_fits"
            )
        quantile_rows = sorted(
            (row for _, row in boosters.values() if row.objective == "quantile"),
            key=lambda row: row.quantile_level,
        )
        return cls(
            model_version=model_version,
            feature_names=json.loads(rows["feature_names"].iloc[0]),
            expected_spend=boosters["expected_spend"][0],
            prob_purchase=boosters["prob_purchase"][0],
            quantiles=[
                (row.target, boosters[row.target][0], float(row.calibration_scale))
                for row in quantile_rows
            ],
            btyd_fit_id=fit_id,
            btyd=model_from_row(fit["method"].iloc[0], fit["parameters"].iloc[0]),
        )

    @property
    def quantile_columns(self) -> list[str]:
        return [column for column, _, _ in self.quantiles]


def predictions_schema(model: ScoringModel) -> pa.Schema:
    return pa.schema(
        [
            ("customer_id", pa.string()),
            ("as_of_date", pa.date32()),
            ("horizon_days", pa.int32()),
            ("expected_spend", pa.float64()),
            *[(column, pa.float64()) for column in model.quantile_columns],
            ("prob_purchase", pa.float64()),
            ("model_version", pa.string()),
            ("scored_at", pa.timestamp("us")),
        ]
    )


def score_frame(
    model: ScoringModel, features: pd.DataFrame, scored_at: dt.datetime
) -> pd.DataFrame:
    """Forecasts for one batch of customers (features at as_of_date, one row each)."""
    require_columns(features, KEY_COLUMNS, "the scoring features")
    window_days = features["horizon_days"].to_numpy(dtype=float)
    base = btyd_forecasts(model.btyd, features, window_days)
    matrix = model_matrix(features, base, window_days)[model.feature_names]

    correction = model.expected_spend.predict(matrix, raw_score=True)
    spend_base = base_spend(base)
    quantiles = np.column_stack(
        [
            quantile_spend(booster.predict(matrix), spend_base) * scale
            for _, booster, scale in model.quantiles
        ]
    )
    # Independently trained quantile boosters can cross; sorting each row restores order
    # without changing the set of values.
    quantiles = np.sort(quantiles, axis=1)

    result = pd.DataFrame(
        {
            "customer_id": features["customer_id"].astype(str).to_numpy(),
            "as_of_date": pd.to_datetime(features["as_of_date"]).dt.date.to_numpy(),
            "horizon_days": features["horizon_days"].astype("int32").to_numpy(),
            "expected_spend": spend_base * np.exp(correction),
        }
    )
    for index, column in enumerate(model.quantile_columns):
        result[column] = quantiles[:, index]
    result["prob_purchase"] = np.clip(model.prob_purchase.predict(matrix), 0.0, 1.0)
    result["model_version"] = model.model_version
    result["scored_at"] = scored_at
    return result


def score_batches(
    model: ScoringModel,
    batches: Iterable[pa.RecordBatch],
    scored_at: dt.datetime,
    customers: int | None = None,
) -> Iterator[pa.RecordBatch]:
    schema = predictions_schema(model)
    scored = Progress(f"scoring with {model.model_version}", customers, "customers")
    for batch in batches:
        if batch.num_rows == 0:
            continue
        frame = score_frame(model, batch.to_pandas(), scored_at)
        yield pa.RecordBatch.from_pandas(frame, schema=schema, preserve_index=False)
        scored.advance(scored.done_count + batch.num_rows)
    scored.done()


def score_reader(
    model: ScoringModel,
    reader: pa.RecordBatchReader,
    scored_at: dt.datetime,
    customers: int | None = None,
) -> pa.RecordBatchReader:
    """A reader of forecasts that pulls feature batches only as it is read.

    customers, the number to score, only tells the progress lines how far it is.
    """
    return pa.RecordBatchReader.from_batches(
        predictions_schema(model), score_batches(model, reader, scored_at, customers)
    )


def score_spark(model: ScoringModel, features: Any, scored_at: dt.datetime) -> Any:
    """Forecasts as a Spark DataFrame, scored where the features are.

    Each Python worker gets the model once (a broadcast: the booster texts travel once
    and are parsed once per worker) and scores its partitions in Arrow batches with
    score_frame, so the results equal in-process scoring and no customer is collected
    to the driver.
    """
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = predictions_schema(model)
    try:
        shared = features.sparkSession.sparkContext.broadcast(model)
    except Exception:  # Spark Connect has no SparkContext: the model travels with each task
        shared = None

    def score_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        scoring_model = model if shared is None else shared.value
        for batch in batches:
            if batch.num_rows:
                frame = score_frame(scoring_model, batch.to_pandas(), scored_at)
                yield pa.RecordBatch.from_pandas(frame, schema=schema, preserve_index=False)

    return features.mapInArrow(score_partition, from_arrow_schema(schema))
