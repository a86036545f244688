"""Apply a registered model version to customer features, batch by batch.

A version is its boosters (model_registry rows) and the BTYD fit their base comes from
(the btyd_fits row the version names). Memory stays flat however many customers there
are: features stream through in Arrow record batches.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa

from clv import distribution
from clv.btyd import BtydModel
from clv.btyd_fits import model_from_row
from clv.engine import first_row, to_pandas, where_equals
from clv.features import (
    btyd_forecasts,
    buyer_spend_base,
    model_matrix,
    purchase_probability,
    require_columns,
    spend_given_purchase,
)
from clv.progress import Progress
from clv.season import Season
from clv.training import MIN_SPEND, log_spend_base, quantile_column

KEY_COLUMNS = ("customer_id", "as_of_date", "horizon_days")
BOOSTER_TARGETS = ("prob_purchase",)


@dataclass(frozen=True)
class ScoringModel:
    model_version: str
    feature_names: list[str]
    prob_purchase: lgb.Booster
    quantiles: list[tuple[str, float]]  # column, the calibrated level read for it
    btyd_fit_id: str
    btyd: BtydModel | None  # None: the naive rate is the base (see btyd_fits)
    # Spend given a purchase at distribution.SPEND_GRID's levels; none: BTYD's own.
    spend_given_purchase: list[lgb.Booster] = field(default_factory=list)
    # Expected spend on BTYD's; none (a version of an earlier release): P x BTYD's
    # spend given a purchase.
    expected_spend: lgb.Booster | None = None
    # The horizon's seasonal level (clv.season): none for earlier releases.
    season: Season = field(default_factory=Season)
    # The horizon it was trained on (none for earlier releases) and its levels, as the
    # var quantiles named them.
    horizon_days: int | None = None
    levels: list[float] = field(default_factory=list)

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
        missing = set(BOOSTER_TARGETS) - set(rows["target"])
        if missing or "calibrated_levels" not in rows or rows["calibrated_levels"].isna().any():
            raise ValueError(
                f"model_version {model_version} was trained by an earlier release (its quantiles"
                " came from quantile boosters) and cannot be scored by this one: run the full"
                " build (dbt build) to train a new version; the old one stays in the registry"
            )
        [model_text] = rows.loc[rows["target"] == "prob_purchase", "model_text"]
        spend = rows[rows["target"] == "spend_given_purchase"].sort_values("quantile_level")
        if not spend.empty and tuple(spend["quantile_level"]) != distribution.SPEND_GRID:
            raise ValueError(
                f"model_version {model_version} forecasts spend given a purchase at the levels"
                f" {tuple(spend['quantile_level'])}, not {distribution.SPEND_GRID}: run the full"
                " build (dbt build) to train a new version"
            )
        expected = rows.loc[rows["target"] == "expected_spend", "model_text"]
        calibrated = json.loads(rows["calibrated_levels"].iloc[0])
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
        return cls(
            model_version=model_version,
            feature_names=json.loads(rows["feature_names"].iloc[0]),
            prob_purchase=lgb.Booster(model_str=model_text),
            quantiles=[
                (quantile_column(float(level)), float(read))
                for level, read in sorted(calibrated.items(), key=lambda item: float(item[0]))
            ],
            btyd_fit_id=fit_id,
            btyd=model_from_row(fit["method"].iloc[0], fit["parameters"].iloc[0]),
            spend_given_purchase=[lgb.Booster(model_str=text) for text in spend["model_text"]],
            expected_spend=lgb.Booster(model_str=expected.iloc[0]) if len(expected) else None,
            season=_season(rows),
            horizon_days=_trained_horizon(rows),
            levels=sorted(float(level) for level in calibrated),
        )

    @property
    def quantile_columns(self) -> list[str]:
        return [column for column, _ in self.quantiles]

    @property
    def ranking_booster(self) -> lgb.Booster:
        """The booster whose score ranks the customers: expected spend's where there is one."""
        return self.expected_spend or self.prob_purchase

    def without_season(self) -> ScoringModel:
        return replace(self, season=Season())


def _trained_horizon(rows: pd.DataFrame) -> int | None:
    horizon = rows["horizon_days"].iloc[0] if "horizon_days" in rows else None
    return None if pd.isna(horizon) else int(horizon)


def version_does_not_fit(
    version: str,
    trained: tuple[int | None, list[float]],
    horizon_days: int,
    levels: list[float],
) -> str | None:
    """Why a version cannot forecast a run's horizon and quantile levels, or None.

    trained is the version's (horizon, levels). Its boosters learned that horizon and
    each level was calibrated on it, so a scoring run keeps both; a full build trains a
    version for others.
    """
    trained_horizon, trained_levels = trained
    if trained_horizon is not None and trained_horizon != horizon_days:
        return (
            f"model_version {version} was trained and calibrated to forecast {trained_horizon}"
            f" days ahead, not {horizon_days}: score with --horizon-days {trained_horizon} (var"
            f" horizon_days), or run the full build (without --score-only) to train a version"
            f" for {horizon_days} days"
        )

    def shown(values: list[float]) -> str:
        return "[" + ", ".join(f"{value:g}" for value in sorted(values)) + "]"

    if shown(trained_levels) != shown(levels):
        return (
            f"model_version {version} forecasts the quantile levels {shown(trained_levels)},"
            f" each calibrated when it was trained, not {shown(levels)}: score with the var"
            f" quantiles at {shown(trained_levels)}, or run the full build (without"
            " --score-only) to train a version for yours"
        )
    return None


def _season(rows: pd.DataFrame) -> Season:
    """A version's seasonal level; none for a version of a release before seasons (and
    one level for all before its thirds)."""
    if "seasonal_factor" not in rows or pd.isna(rows["seasonal_factor"].iloc[0]):
        return Season()
    bands = rows["seasonal_bands"].iloc[0] if "seasonal_bands" in rows else None
    return Season.from_registry(float(rows["seasonal_factor"].iloc[0]), bands)


def model_that_scored(predictions: Any, registry: Any, btyd_fits: Any) -> ScoringModel:
    """The version that scored customer_predictions (relations on either engine), so that
    what is computed from it describes those very forecasts."""
    (version,) = first_row(predictions, "max(model_version)")
    rows = to_pandas(where_equals(registry, "model_version", version))
    return ScoringModel.from_registry(rows, to_pandas(btyd_fits), version)


def predictions_schema(model: ScoringModel) -> pa.Schema:
    return pa.schema(
        [
            ("customer_id", pa.string()),
            ("as_of_date", pa.date32()),
            ("horizon_days", pa.int32()),
            ("expected_spend", pa.float64()),
            *[(column, pa.float64()) for column in model.quantile_columns],
            ("prob_purchase", pa.float64()),
            ("spend_sd", pa.float64()),
            ("model_version", pa.string()),
            ("scored_at", pa.timestamp("us")),
        ]
    )


def booster_inputs(
    model: ScoringModel, features: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(BTYD's forecasts over the horizon, the booster's input matrix) for a batch."""
    require_columns(features, KEY_COLUMNS, "the scoring features")
    window_days = features["horizon_days"].to_numpy(dtype=float)
    base = btyd_forecasts(model.btyd, features, window_days)
    return base, model_matrix(features, base, window_days)[model.feature_names]


@dataclass(frozen=True)
class Forecast:
    """A batch's forecast distribution: spend is 0 with 1 - prob, else spend given a
    purchase with the log quantiles at distribution.SPEND_GRID's levels; expected is
    the expected spend, which ranks the customers."""

    base: pd.DataFrame  # BTYD's forecasts over the horizon
    prob: np.ndarray
    log_quantiles: np.ndarray
    expected: np.ndarray  # before the level, shared by the season's thirds (if any)


def forecast_of(model: ScoringModel, features: pd.DataFrame) -> Forecast:
    base, matrix = booster_inputs(model, features)
    prob = purchase_probability(base, model.prob_purchase.predict(matrix, raw_score=True))
    if model.spend_given_purchase:
        log_quantiles = log_spend_base(base)[:, None] + np.column_stack(
            [booster.predict(matrix, raw_score=True) for booster in model.spend_given_purchase]
        )
    else:
        mean = buyer_spend_base(base)
        _, variance = spend_given_purchase(
            model.btyd, features, features["horizon_days"].to_numpy(dtype=float)
        )
        log_quantiles = distribution.log_normal_log_quantiles(mean, variance)
    # The season scales what a buyer spends, and the quantiles are read off the shifted
    # distribution; the expected spend gets its size through the level (score_frame),
    # its share through the thirds. Scaling the purchase rate instead (P(no purchase) **
    # factor, spend given a purchase to match) did worse on pinball loss in all four
    # seasonal horizons of benchmarks/seasons.py.
    log_quantiles = log_quantiles + np.log(model.season.levels(features))[:, None]
    expected = expected_spend(model, base, matrix, prob) * model.season.departures(features)
    return Forecast(base, prob, log_quantiles, expected)


def expected_spend(
    model: ScoringModel, base: pd.DataFrame, matrix: pd.DataFrame, prob: np.ndarray | None = None
) -> np.ndarray:
    """Expected spend before the level: the expected-spend booster's correction of BTYD's,
    or, for a version without one, P(purchase) (prob, computed here when not given) times
    BTYD's spend given a purchase."""
    if model.expected_spend is not None:
        btyd_spend = np.maximum(base["btyd_expected_spend"].to_numpy(dtype=float), MIN_SPEND)
        return btyd_spend * np.exp(model.expected_spend.predict(matrix, raw_score=True))
    if prob is None:
        prob = purchase_probability(base, model.prob_purchase.predict(matrix, raw_score=True))
    return prob * buyer_spend_base(base)


@dataclass
class SpendTotals:
    """BTYD's total expected spend and the model's before the level, batch by batch."""

    btyd: float = 0.0
    model: float = 0.0

    def add(self, base: pd.DataFrame, expected: np.ndarray) -> SpendTotals:
        self.btyd += float(base["btyd_expected_spend"].sum())
        self.model += float(expected.sum())
        return self

    @property
    def level(self) -> float:
        """The factor that puts the model's total at BTYD's (1 when there is nothing).

        A total that is not a finite number would make every forecast 0 or NaN, and
        expected_spend >= 0 would still hold: it stops the scoring instead."""
        if not (np.isfinite(self.btyd) and np.isfinite(self.model)):
            raise ValueError(
                f"the expected spend does not add up to a finite total (BTYD's {self.btyd},"
                f" the model's {self.model}): the boosters' forecasts overflow on these"
                " customers, so none is written; the model_registry and btyd_fits rows of"
                " this version show the parameters they came from"
            )
        return self.btyd / self.model if self.model > 0 else 1.0


def spend_totals(model: ScoringModel, batches: Iterable[pa.RecordBatch]) -> SpendTotals:
    """BTYD's total and the model's before the level, over every customer to be scored.

    The level stays the BTYD base's: the expected-spend booster decides how the total is
    shared among customers, not how large it is. Its own level, learnt from windows
    whose levels were divided out, ran further from the actual than BTYD's (CDNOW:
    -13.0% against -10.7%), and a window's level did not carry over to the next one.
    """
    totals = SpendTotals()
    for batch in batches:
        if batch.num_rows:
            # Only the expected spend: the level needs no purchase or spend boosters.
            features = batch.to_pandas()
            base, matrix = booster_inputs(model, features)
            shares = model.season.departures(features)
            totals.add(base, expected_spend(model, base, matrix) * shares)
    return totals


def score_frame(
    model: ScoringModel,
    features: pd.DataFrame,
    scored_at: dt.datetime,
    level: float | None = None,
) -> pd.DataFrame:
    """Forecasts for customers at as_of_date, one row each.

    The quantiles are read off the forecast's distribution (no purchase with 1 -
    P(purchase), else spend given a purchase from the spend boosters, or BTYD's
    log-normal) at the calibrated levels, which are in order, so they never cross.
    Expected spend is the expected-spend booster's, times level (spend_totals(...).level
    over all the customers scored; without it, the frame is taken to be all of them) and
    the version's seasonal level (clv.season).
    """
    found = forecast_of(model, features)
    if level is None:
        level = SpendTotals().add(found.base, found.expected).level
    quantiles = distribution.grid_quantiles(
        found.prob, found.log_quantiles, tuple(read for _, read in model.quantiles)
    )
    result = pd.DataFrame(
        {
            "customer_id": features["customer_id"].astype(str).to_numpy(),
            "as_of_date": pd.to_datetime(features["as_of_date"]).dt.date.to_numpy(),
            "horizon_days": features["horizon_days"].astype("int32").to_numpy(),
            "expected_spend": found.expected * level * model.season.factor,
        }
    )
    for index, column in enumerate(model.quantile_columns):
        result[column] = quantiles[:, index]
    result["prob_purchase"] = found.prob
    # The spread of the forecast's own distribution, which the total's interval sums.
    result["spend_sd"] = np.sqrt(distribution.grid_spend_variance(found.prob, found.log_quantiles))
    result["model_version"] = model.model_version
    result["scored_at"] = scored_at
    return result


def score_batches(
    model: ScoringModel,
    batches: Iterable[pa.RecordBatch],
    scored_at: dt.datetime,
    level: float,
    customers: int | None = None,
) -> Iterator[pa.RecordBatch]:
    schema = predictions_schema(model)
    scored = Progress(f"scoring with {model.model_version}", customers, "customers")
    for batch in batches:
        if batch.num_rows == 0:
            continue
        frame = score_frame(model, batch.to_pandas(), scored_at, level)
        yield pa.RecordBatch.from_pandas(frame, schema=schema, preserve_index=False)
        scored.advance(scored.done_count + batch.num_rows)
    scored.done()


def score_reader(
    model: ScoringModel,
    read_features: Callable[[], pa.RecordBatchReader],
    scored_at: dt.datetime,
    customers: int | None = None,
) -> pa.RecordBatchReader:
    """A reader of forecasts that pulls feature batches only as it is read.

    read_features gives a fresh reader of the features each time: they are read twice,
    once for the level (spend_totals) and once to score. customers, the number to score,
    only tells the progress lines how far it is.
    """
    level = spend_totals(model, read_features()).level
    return pa.RecordBatchReader.from_batches(
        predictions_schema(model),
        score_batches(model, read_features(), scored_at, level, customers),
    )


def on_workers(model: ScoringModel, features: Any) -> Callable[[], ScoringModel]:
    """How a Spark task reaches the model: a broadcast, so the booster text travels once
    and is parsed once per worker."""
    try:
        shared = features.sparkSession.sparkContext.broadcast(model)
    except Exception:  # Spark Connect has no SparkContext: the model travels with each task
        return lambda: model
    return lambda: shared.value


def spark_level(worker_model: Callable[[], ScoringModel], features: Any) -> float:
    """The level (see spend_totals) in a distributed pass: one row per partition reaches
    the driver."""

    def partition_sums(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        totals = spend_totals(worker_model(), batches)
        yield pa.RecordBatch.from_pydict({"btyd": [totals.btyd], "model": [totals.model]})

    sums = features.mapInArrow(partition_sums, "btyd double, model double")
    btyd, unlevelled = sums.groupBy().sum("btyd", "model").collect()[0]
    return SpendTotals(btyd or 0.0, unlevelled or 0.0).level


def score_spark(model: ScoringModel, features: Any, scored_at: dt.datetime) -> Any:
    """Forecasts as a Spark DataFrame, scored where the features are.

    Each Python worker gets the model once (a broadcast: the booster texts travel once
    and are parsed once per worker) and scores its partitions in Arrow batches with
    score_frame, so the results equal in-process scoring. Two distributed passes, as
    in score_reader: the first sums the totals behind the level (one row per partition
    reaches the driver), the second scores; no customer is collected to the driver.
    """
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = predictions_schema(model)
    worker_model = on_workers(model, features)
    level = spark_level(worker_model, features)

    def score_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                frame = score_frame(worker_model(), batch.to_pandas(), scored_at, level)
                yield pa.RecordBatch.from_pandas(frame, schema=schema, preserve_index=False)

    return features.mapInArrow(score_partition, from_arrow_schema(schema))
