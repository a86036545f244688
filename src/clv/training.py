"""Train the forecast boosters on labelled training examples (one row per customer and cutoff).

The design, and why (measured out of time on a single-cohort retailer):
- The BG/NBD + Gamma-Gamma forecast, fitted at each cutoff on that cutoff's history only,
  is the base; the expected-spend booster learns a multiplicative correction to it
  (Poisson objective, log link, log of the BTYD forecast as init score). As a mere
  feature it added little.
- Each cutoff's overall level (actual over BTYD for that window) is divided out of its
  labels, so the boosters learn which customers BTYD gets wrong, not how hot a calendar
  window was; the window length is a feature. No level is put back when scoring: a
  validation window's level did not transfer to the next window, and last year's
  level for the same season, tried here on generated data, overshot (the level of an
  early cutoff also reflects how young the customer base was then).
- Quantile boosters (quantile objective) are multiplicative on the same base: they learn
  the quantiles of actual over BTYD, and scoring multiplies them back by the BTYD
  forecast. Since q_tau(Y | X) = B(X) q_tau(Y / B(X) | X), nothing is lost, and the
  spread then grows with the window as BTYD's forecast does; quantiles of spend itself,
  learnt on shorter training windows, came out too narrow for a longer horizon (on
  CDNOW, 9 months of history and a 9-month horizon, the median's MAE fell from 29.3 to
  28.3 and p90's pinball loss from 22.5 to 13.8).
- A purchase-probability booster (binary) reads the same features, BTYD's among them.
- Early stopping uses the most recent cutoff whose window is as long as the horizon,
  later than every training window: never a random split (see time_split). Quantiles
  are recalibrated on that window only when it spans the whole horizon: a scale fitted
  on a 30-day window (all a short history offers) cut CDNOW's p90 to a fifth and left
  74% of 9-month actuals below it instead of 90%.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from clv.btyd import BtydModel
from clv.features import (
    MODEL_FEATURES,
    base_spend,
    btyd_forecasts,
    model_matrix,
    quantile_spend,
    require_columns,
)
from clv.progress import Progress

EXAMPLE_COLUMNS = ("cutoff_date", "cutoff_rank", "label_window_days", "label_net_spend")
# Scales tried when recalibrating a quantile on the validation window.
CALIBRATION_SCALES = np.geomspace(0.2, 5.0, 281)


@dataclass(frozen=True)
class TrainingConfig:
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    num_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    seed: int = 42
    num_boost_round: int = 400
    early_stopping_rounds: int = 30
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 100

    @classmethod
    def from_settings(cls, quantiles: str, num_threads: str) -> TrainingConfig:
        """From the dbt vars as a Python model receives them: '0.1,0.5,0.9' and '0' (all cores).

        Production and backtest both build their config here, so they train alike.
        """
        return cls(
            quantiles=parse_quantiles(quantiles),
            num_threads=int(num_threads) or os.cpu_count() or 1,
        )

    def __post_init__(self) -> None:
        if not self.quantiles or any(not 0 < level < 1 for level in self.quantiles):
            raise ValueError(f"quantiles must lie strictly between 0 and 1, got {self.quantiles}")
        if self.num_threads < 1:
            raise ValueError(f"num_threads must be at least 1, got {self.num_threads}")


@dataclass(frozen=True)
class TrainedBooster:
    target: str  # a prediction column: expected_spend, prob_purchase, spend_p10, ...
    objective: str
    quantile_level: float | None
    booster: lgb.Booster
    best_iteration: int
    calibration_scale: float
    validation_metric_name: str | None
    validation_metric: float | None
    parameters: dict


@dataclass(frozen=True)
class TrainingResult:
    boosters: list[TrainedBooster]
    training_cutoffs: list[str]
    validation_cutoff: str | None
    training_rows: int
    validation_rows: int
    cutoff_levels: dict[str, float]


@dataclass(frozen=True)
class PreparedExamples:
    matrix: pd.DataFrame
    label: np.ndarray  # net spend in the window, floored at 0, level divided out
    has_purchase: np.ndarray
    base_spend: np.ndarray  # BTYD forecast over the window
    is_training: np.ndarray
    is_validation: np.ndarray
    cutoff_levels: dict[str, float]


def parse_quantiles(text: str) -> tuple[float, ...]:
    """The var quantiles as a Python model receives it: '0.1,0.5,0.9'."""
    return tuple(float(level) for level in text.split(","))


def quantile_column(level: float) -> str:
    """spend_p10 for 0.1: the public name of a quantile forecast."""
    percent = level * 100
    return f"spend_p{percent:g}".replace(".", "_")


def prepare_examples(
    examples: pd.DataFrame, btyd: Mapping[dt.date, BtydModel | None]
) -> PreparedExamples:
    """Add each cutoff's own BTYD forecast, divide out each cutoff's level, split off validation.

    btyd holds the fit at each cutoff date (btyd_fits), on that cutoff's history only.
    """
    require_columns(examples, EXAMPLE_COLUMNS, "the training examples")
    if examples.empty:
        raise ValueError(
            "no training examples: the history is too short for any training cutoff "
            "(see int_training_cutoffs and the vars min_training_history_days, "
            "min_label_window_days)"
        )
    examples = examples.reset_index(drop=True)
    window_days = examples["label_window_days"].to_numpy(dtype=float)
    label = np.maximum(examples["label_net_spend"].to_numpy(dtype=float), 0.0)
    btyd_parts = []
    levels: dict[str, float] = {}
    normalised = np.empty_like(label)
    for cutoff, rows in examples.groupby("cutoff_date", sort=True).groups.items():
        part = examples.loc[rows]
        cutoff_date = pd.Timestamp(cutoff).date()
        if cutoff_date not in btyd:
            raise ValueError(f"no BTYD fit for the training cutoff {cutoff_date} (see btyd_fits)")
        forecasts = btyd_forecasts(btyd[cutoff_date], part, window_days[rows])
        btyd_parts.append(forecasts)
        forecast_total = float(forecasts["btyd_expected_spend"].sum())
        level = float(label[rows].sum()) / forecast_total if forecast_total > 0 else 1.0
        level = level if level > 0 else 1.0
        levels[str(cutoff_date)] = level
        normalised[rows] = label[rows] / level
    btyd = pd.concat(btyd_parts).sort_index()
    is_training, is_validation = time_split(examples)
    return PreparedExamples(
        matrix=model_matrix(examples, btyd, window_days),
        label=normalised,
        has_purchase=(
            examples["label_has_purchase"].to_numpy(dtype=bool)
            if "label_has_purchase" in examples
            else label > 0
        ),
        base_spend=base_spend(btyd),
        is_training=is_training,
        is_validation=is_validation,
        cutoff_levels=levels,
    )


def spans_horizon(examples: pd.DataFrame) -> np.ndarray:
    """Rows whose label window is as long as the forecast horizon."""
    return examples["label_window_days"].to_numpy() >= examples["horizon_days"].to_numpy()


def time_split(examples: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows), split by time, never at random.

    Validation is the most recent cutoff whose label window spans the whole horizon,
    so that early stopping and quantile recalibration see windows as long as the
    forecast's; training is every cutoff whose label window ended by then, so no
    training label overlaps the validation window. A history too short for that
    (e.g. 9 months of data, 9-month horizon) holds out the most recent cutoff, for
    early stopping only, and trains on the others.
    """
    require_columns(examples, ("cutoff_date", "label_window_days", "horizon_days"), "the examples")
    cutoffs = pd.to_datetime(examples["cutoff_date"]).to_numpy()
    window = examples["label_window_days"].to_numpy()
    window_ends = cutoffs + window.astype("timedelta64[D]")
    full_length = spans_horizon(examples)
    if full_length.any():
        validation_cutoff = cutoffs[full_length].max()
        ended_before = window_ends <= validation_cutoff
        if np.unique(cutoffs[ended_before]).size >= 2:
            return ended_before, cutoffs == validation_cutoff
    latest = cutoffs == cutoffs.max()
    if np.unique(cutoffs).size > 1:
        return ~latest, latest
    return np.ones(len(cutoffs), bool), np.zeros(len(cutoffs), bool)


def _parameters(config: TrainingConfig, objective: str, **extra: float) -> dict:
    return {
        "objective": objective,
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "min_data_in_leaf": config.min_data_in_leaf,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        # Explicit threads: left to OpenMP inside a process that also runs DuckDB's
        # threads, the same training has been seen to vary 100x in wall time.
        "num_threads": config.num_threads,
        "seed": config.seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
        **extra,
    }


def _fit(
    parameters: dict,
    train: lgb.Dataset,
    valid: lgb.Dataset | None,
    config: TrainingConfig,
    rounds: Progress,
) -> tuple[lgb.Booster, int, str | None, float | None]:
    rounds_before = rounds.done_count

    def report(env: lgb.callback.CallbackEnv) -> None:
        rounds.advance(rounds_before + env.iteration + 1)

    if valid is None:
        booster = lgb.train(
            parameters, train, num_boost_round=config.num_boost_round // 2, callbacks=[report]
        )
        return booster, booster.current_iteration(), None, None
    booster = lgb.train(
        parameters,
        train,
        num_boost_round=config.num_boost_round,
        valid_sets=[valid],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False), report],
    )
    [(name, value)] = booster.best_score["validation"].items()
    return booster, booster.best_iteration, name, float(value)


def calibration_scale(actual: np.ndarray, predicted: np.ndarray, level: float) -> float:
    """The multiplier closest to 1 that makes a quantile forecast calibrated on held-out data.

    Calibrated at level τ means P(actual < q) <= τ <= P(actual <= q); with many actuals
    exactly zero both sides matter. When no scale satisfies both, take the one that
    misses by least.
    """
    scaled = np.outer(CALIBRATION_SCALES, predicted)
    below = (actual < scaled).mean(axis=1)
    at_or_below = (actual <= scaled).mean(axis=1)
    miss = np.maximum(below - level, 0) + np.maximum(level - at_or_below, 0)
    best_miss = miss.min()
    candidates = np.flatnonzero(miss <= best_miss + 1e-12)
    return float(
        CALIBRATION_SCALES[candidates[np.argmin(np.abs(np.log(CALIBRATION_SCALES[candidates])))]]
    )


def train_boosters(
    examples: pd.DataFrame,
    config: TrainingConfig,
    btyd: Mapping[dt.date, BtydModel | None],
    what: str = "training",
) -> TrainingResult:
    """Train the expected-spend, quantile and purchase-probability boosters.

    btyd holds the BTYD fit at each cutoff date of the examples (see prepare_examples);
    what names the work in the progress lines.

    The examples are sorted first: a SQL table comes back in no fixed order, and with
    bagging the same rows in another order would give another model.
    """
    require_columns(examples, ("customer_id", "cutoff_date"), "the training examples")
    examples = examples.sort_values(["cutoff_date", "customer_id"], kind="stable")
    examples = examples.reset_index(drop=True)
    prepared = prepare_examples(examples, btyd)
    # Large bases are already sampled by customer in SQL (var max_training_rows).
    train_rows = np.flatnonzero(prepared.is_training)
    valid_rows = np.flatnonzero(prepared.is_validation)
    has_validation = valid_rows.size > 0
    features = list(MODEL_FEATURES)

    def dataset(rows: np.ndarray, label: np.ndarray, init_score: np.ndarray | None = None):
        return lgb.Dataset(
            prepared.matrix.iloc[rows],
            label=label[rows],
            init_score=None if init_score is None else init_score[rows],
            feature_name=features,
            free_raw_data=False,
        )

    boosters: list[TrainedBooster] = []
    count = len(config.quantiles) + 2
    rounds = Progress(
        f"{what}, {count} boosters on {train_rows.size:,} examples",
        count * config.num_boost_round,
        "rounds at most (early stopping ends sooner)",
    )

    log_base = np.log(prepared.base_spend)
    parameters = _parameters(config, "poisson")
    booster, best, metric, value = _fit(
        parameters,
        dataset(train_rows, prepared.label, log_base),
        dataset(valid_rows, prepared.label, log_base) if has_validation else None,
        config,
        rounds,
    )
    boosters.append(
        TrainedBooster(
            "expected_spend", "poisson", None, booster, best, 1.0, metric, value, parameters
        )
    )

    ratio = prepared.label / prepared.base_spend
    recalibrate = has_validation and bool(spans_horizon(examples)[valid_rows].all())
    for level in config.quantiles:
        parameters = _parameters(config, "quantile", alpha=level)
        booster, best, metric, value = _fit(
            parameters,
            dataset(train_rows, ratio),
            dataset(valid_rows, ratio) if has_validation else None,
            config,
            rounds,
        )
        scale = 1.0
        if recalibrate:
            predicted = quantile_spend(
                booster.predict(prepared.matrix.iloc[valid_rows], num_iteration=best),
                prepared.base_spend[valid_rows],
            )
            scale = calibration_scale(prepared.label[valid_rows], predicted, level)
        boosters.append(
            TrainedBooster(
                quantile_column(level),
                "quantile",
                level,
                booster,
                best,
                scale,
                metric,
                value,
                parameters,
            )
        )

    parameters = _parameters(config, "binary")
    purchase = prepared.has_purchase.astype(float)
    booster, best, metric, value = _fit(
        parameters,
        dataset(train_rows, purchase),
        dataset(valid_rows, purchase) if has_validation else None,
        config,
        rounds,
    )
    rounds.done()
    boosters.append(
        TrainedBooster(
            "prob_purchase", "binary", None, booster, best, 1.0, metric, value, parameters
        )
    )

    cutoffs = pd.to_datetime(examples["cutoff_date"]).dt.date.astype(str).to_numpy()
    return TrainingResult(
        boosters=boosters,
        training_cutoffs=sorted(set(cutoffs[train_rows])),
        validation_cutoff=str(cutoffs[valid_rows][0]) if has_validation else None,
        training_rows=int(train_rows.size),
        validation_rows=int(valid_rows.size),
        cutoff_levels=prepared.cutoff_levels,
    )
