"""Train the forecast boosters on labelled training examples (one row per customer and cutoff).

The design, and why (measured out of time on CDNOW, a single-cohort retailer, and on
generated data, BTYD's own model and a population it cannot describe):
- The BG/NBD + Gamma-Gamma forecast, fitted at each cutoff on that cutoff's history only,
  is the base every booster corrects (its forecasts are also among the features).
- Who buys: a binary booster starts from BTYD's own P(purchase) (log-odds as init
  score). Each cutoff's purchase rate is put into its init score, so the booster learns
  who buys more or less often than BTYD says, not how busy a calendar window was; the
  window length is a feature. No level is put back when scoring: a window's level did
  not transfer to the next one (cutoff_levels keeps each cutoff's spend level, actual
  over BTYD, to show how far it drifts).
- Spend given a purchase: quantile boosters at distribution.SPEND_GRID's levels, on log
  spend among buyers, each from BTYD's log spend given a purchase with each cutoff's
  level taken out and the cutoffs' common level left for the boosters to learn (BTYD's
  mean sits above what a typical buyer spends; with the common level taken out too,
  spend given a purchase at BTYD's mean level won on CDNOW and lost up to 25% on mixed
  customers, docs/model.md). Quantile boosters on the whole, mostly-zero target had
  left p90 under-covered (70% of CDNOW's customers spend nothing in the horizon): the
  atom at 0 is the purchase booster's. Where fewer than config.min_spend_buyers buyers
  train, BTYD's own spend given a purchase stays.
- Expected spend, which ranks the customers: a Poisson booster on BTYD's log expected
  spend, each cutoff's labels divided by its level. On CDNOW it ranks better than BTYD
  (Gini 0.718 against 0.674) for a 3.6% larger RMSE; scoring keeps the total at BTYD's
  (clv.scoring). Tried and dropped: a zero-inflated log-normal with its own location and
  variance boosters was calibrated but lost to BTYD's own distribution on pinball loss
  (10.60 against 10.41 on CDNOW).
- Early stopping uses the most recent cutoff whose window is as long as the horizon,
  later than every training window: never a random split (see time_split). The
  quantile levels are calibrated on that window only when it spans the whole horizon:
  each level tau is read at the tau-quantile of the validation outcomes' randomised
  PITs (clv.distribution), the forecast given that window's own level as training
  gives it to each window: a window's level is one draw (CDNOW's Q4 1997 ran 20% above
  BTYD), and read as spread it widened the next horizon's p90 to P(y <= p90) 0.925.
  A month's outcomes say little about a 9-month forecast's spread, so with a shorter
  validation window the levels are read on a refit of the whole model 91 days
  earlier, on those last 91 days (_calibrated_on_a_refit).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy import optimize, special

from clv import distribution
from clv.btyd import BtydModel
from clv.features import (
    MODEL_FEATURES,
    btyd_forecasts,
    buyer_spend_base,
    model_matrix,
    purchase_log_odds_base,
    require_columns,
    spend_given_purchase,
)
from clv.progress import Progress
from clv.season import Season, seasonal_level

EXAMPLE_COLUMNS = ("cutoff_date", "cutoff_rank", "label_window_days", "label_net_spend")


class NoReturningBuyers(ValueError):
    """No customer spent anything in a label window after a training cutoff: every label
    is 0, and LightGBM's Poisson objective refuses such data."""


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
    # Below this many buyers in the training windows, spend given a purchase stays
    # BTYD's: a quantile booster needs min_data_in_leaf buyers a leaf for one split, and
    # a few hundred to learn more than the base already says.
    min_spend_buyers: int = 300
    # Learn the horizon's season from the same window in earlier years (clv.season).
    seasonal_level: bool = True

    @classmethod
    def from_settings(
        cls, quantiles: str, num_threads: str, seasonal_level: str = "True"
    ) -> TrainingConfig:
        """From the dbt vars as a Python model receives them: '0.1,0.5,0.9', '0' (all
        cores) and 'True'.

        Production and backtest both build their config here, so they train alike.
        """
        return cls(
            quantiles=parse_quantiles(quantiles),
            num_threads=int(num_threads) or os.cpu_count() or 1,
            seasonal_level=str(seasonal_level).strip().lower() in ("true", "1", "yes"),
        )

    def __post_init__(self) -> None:
        if not self.quantiles or any(not 0 < level < 1 for level in self.quantiles):
            raise ValueError(f"quantiles must lie strictly between 0 and 1, got {self.quantiles}")
        if self.num_threads < 1:
            raise ValueError(f"num_threads must be at least 1, got {self.num_threads}")


# Spend is floored here under a log: a base BTYD gives nothing still needs a logarithm.
MIN_SPEND = 1e-3


@dataclass(frozen=True)
class TrainedBooster:
    target: str  # prob_purchase, spend_given_purchase (per quantile_level) or expected_spend
    objective: str
    booster: lgb.Booster
    best_iteration: int
    validation_metric_name: str | None
    validation_metric: float | None
    parameters: dict
    # spend_given_purchase: the level of spend given a purchase the booster forecasts.
    quantile_level: float | None = None
    # The validation metric after each round (empty without a validation cutoff).
    validation_curve: tuple[float, ...] = ()

    def stopped_at(self, rounds: int) -> TrainedBooster:
        """This booster keeping at most rounds rounds, its validation metric read there."""
        kept = min(self.best_iteration, rounds)
        metric = self.validation_curve[kept - 1] if self.validation_curve else None
        return replace(self, best_iteration=kept, validation_metric=metric)


@dataclass(frozen=True)
class TrainingResult:
    boosters: list[TrainedBooster]
    # Each configured quantile level -> the level of the distribution read for it.
    calibrated_levels: dict[float, float]
    training_cutoffs: list[str]
    validation_cutoff: str | None
    training_rows: int
    validation_rows: int
    cutoff_levels: dict[str, float]
    # How spend given a purchase is forecast, in words: the quantile boosters, or why not.
    spend_model: str = ""
    # Where the quantile levels were read, in words (see train_boosters).
    calibration: str = ""
    # The level of the horizon's season, learnt from earlier years (clv.season).
    season: Season = field(default_factory=Season)
    # PreparedExamples.spend_level of the training windows
    spend_level: float = 0.0


@dataclass(frozen=True)
class PreparedExamples:
    matrix: pd.DataFrame
    actual: np.ndarray  # net spend in the window as it was
    has_purchase: np.ndarray
    btyd: pd.DataFrame  # BTYD's forecasts over the window (btyd_forecasts)
    # BTYD's log-odds of a purchase, plus the cutoff's own level on that scale
    purchase_base: np.ndarray
    is_training: np.ndarray
    is_validation: np.ndarray
    cutoff_levels: dict[str, float]
    # log of BTYD's spend given a purchase, plus the cutoff's own level among its buyers
    spend_base: np.ndarray
    # log of BTYD's expected spend over the window, and the label divided by the
    # cutoff's level (actual over BTYD), so the booster learns who, not how busy
    expected_base: np.ndarray
    expected_label: np.ndarray
    # The windows' common level of spend given a purchase: buyers' mean log ratio of
    # actual spend to BTYD's (left in spend_base for the boosters to learn)
    spend_level: float = 0.0


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
    """Add each cutoff's own BTYD forecast and level, split off validation.

    btyd holds the fit at each cutoff date (btyd_fits), on that cutoff's history only.
    A cutoff's level is its actual spend over BTYD's (kept in cutoff_levels: how far
    BTYD's level drifted in that window); its purchase rate goes into purchase_base.
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
    has_purchase = (
        examples["label_has_purchase"].to_numpy(dtype=bool)
        if "label_has_purchase" in examples
        else label > 0
    )
    btyd_parts = []
    levels: dict[str, float] = {}
    purchase_base = np.empty_like(label)
    raw_spend_base = np.empty_like(label)
    spend_base = np.empty_like(label)
    expected_base = np.empty_like(label)
    expected_label = np.empty_like(label)
    for cutoff, rows in examples.groupby("cutoff_date", sort=True).indices.items():
        part = examples.iloc[rows]
        cutoff_date = pd.Timestamp(cutoff).date()
        if cutoff_date not in btyd:
            raise ValueError(f"no BTYD fit for the training cutoff {cutoff_date} (see btyd_fits)")
        forecasts = btyd_forecasts(btyd[cutoff_date], part, window_days[rows])
        btyd_parts.append(forecasts)
        forecast_total = float(forecasts["btyd_expected_spend"].sum())
        level = float(label[rows].sum()) / forecast_total if forecast_total > 0 else 1.0
        level = level if level > 0 else 1.0
        levels[str(cutoff_date)] = level
        purchase_base[rows] = _with_purchase_level(
            purchase_log_odds_base(forecasts), has_purchase[rows]
        )
        raw_spend_base[rows] = log_spend_base(forecasts)
        spend_base[rows] = _with_spend_level(raw_spend_base[rows], label[rows])
        expected_base[rows] = np.log(
            np.maximum(forecasts["btyd_expected_spend"].to_numpy(dtype=float), MIN_SPEND)
        )
        expected_label[rows] = label[rows] / level
    btyd = pd.concat(btyd_parts).sort_index()
    # Each window's level of spend given a purchase is taken out, the windows' common
    # level left in: the spend boosters learn it (BTYD's typical gap between its mean
    # and what buyers spend), not how big one window was.
    buyers = label > 0
    spend_level = (
        float(np.mean(np.log(label[buyers]) - raw_spend_base[buyers])) if buyers.any() else 0.0
    )
    spend_base -= spend_level
    is_training, is_validation = time_split(examples)
    return PreparedExamples(
        matrix=model_matrix(examples, btyd, window_days),
        actual=examples["label_net_spend"].to_numpy(dtype=float),
        has_purchase=has_purchase,
        btyd=btyd,
        purchase_base=purchase_base,
        is_training=is_training,
        is_validation=is_validation,
        cutoff_levels=levels,
        spend_base=spend_base,
        expected_base=expected_base,
        expected_label=expected_label,
        spend_level=spend_level,
    )


def log_spend_base(forecasts: pd.DataFrame) -> np.ndarray:
    """The spend boosters' base: log of BTYD's expected spend given a purchase."""
    return np.log(np.maximum(buyer_spend_base(forecasts), MIN_SPEND))


def _with_spend_level(log_base: np.ndarray, spend: np.ndarray) -> np.ndarray:
    """The base shifted by the window's mean log ratio of actual spend to it among buyers,
    so the spend boosters learn whose spend BTYD gets wrong, not how big a window was."""
    buyers = spend > 0
    if not buyers.any():
        return log_base
    return log_base + float(np.mean(np.log(spend[buyers]) - log_base[buyers]))


def _with_purchase_level(log_odds: np.ndarray, purchased: np.ndarray) -> np.ndarray:
    """BTYD's log-odds shifted so that their mean probability is the window's purchase rate.

    So the purchase booster learns who buys more or less often than BTYD says, not how
    busy the window was.
    """
    rate = float(purchased.mean())
    if not 0 < rate < 1:
        return log_odds
    shift = optimize.brentq(lambda d: special.expit(log_odds + d).mean() - rate, -50.0, 50.0)
    return log_odds + shift


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
) -> tuple[lgb.Booster, int, str | None, tuple[float, ...]]:
    """(booster, rounds kept, validation metric's name, its value after each round)."""
    rounds_before = rounds.done_count

    def report(env: lgb.callback.CallbackEnv) -> None:
        rounds.advance(rounds_before + env.iteration + 1)

    if valid is None:
        booster = lgb.train(
            parameters, train, num_boost_round=config.num_boost_round // 2, callbacks=[report]
        )
        return booster, booster.current_iteration(), None, ()
    history: dict[str, dict[str, list[float]]] = {}
    booster = lgb.train(
        parameters,
        train,
        num_boost_round=config.num_boost_round,
        valid_sets=[valid],
        valid_names=["validation"],
        callbacks=[
            lgb.early_stopping(config.early_stopping_rounds, verbose=False),
            lgb.record_evaluation(history),
            report,
        ],
    )
    [(name, curve)] = history["validation"].items()
    return booster, booster.best_iteration, name, tuple(map(float, curve))


def spend_log_quantiles(
    boosters: list[TrainedBooster], matrix: pd.DataFrame, log_base: np.ndarray
) -> np.ndarray:
    """Each row's log spend given a purchase at the spend boosters' levels (in grid order)."""
    return np.column_stack(
        [
            log_base
            + booster.booster.predict(matrix, num_iteration=booster.best_iteration, raw_score=True)
            for booster in boosters
        ]
    )


def _calibrated_levels(
    examples: pd.DataFrame,
    prepared: PreparedExamples,
    rows: np.ndarray,
    purchase: TrainedBooster,
    spend: list[TrainedBooster],
    btyd: Mapping[dt.date, BtydModel | None],
    config: TrainingConfig,
    spend_level: float,
) -> dict[float, float]:
    """Each quantile level read at the level-quantile of the held-out outcomes' PITs.

    The forecast is made as scoring makes it (P(purchase) from the booster on BTYD's
    log-odds, spend given a purchase from the spend boosters on BTYD's base, BTYD's
    log-normal where there are none) but given the window's own level, as training
    gives it to each window: prepared's bases for rows, which carry the window's
    purchase rate and its buyers' spend level over prepared's common one, here taken
    over spend_level, the common level the boosters learnt (PreparedExamples). So the
    levels read how wide the forecast is, not how busy that one window happened to be.
    rows are one cutoff's (a validation window, or a refit's last days).
    """
    window = prepared.btyd.iloc[rows]
    matrix = prepared.matrix.iloc[rows]
    actual = prepared.actual[rows]
    raw = purchase.booster.predict(matrix, num_iteration=purchase.best_iteration, raw_score=True)
    log_spend = prepared.spend_base[rows] + prepared.spend_level - spend_level
    prob = special.expit(prepared.purchase_base[rows] + raw)
    if spend:
        log_quantiles = spend_log_quantiles(spend, matrix, log_spend)
        below, at_or_below = distribution.grid_cdf(actual, prob, log_quantiles)
    else:
        part = examples.iloc[rows]
        cutoff = pd.Timestamp(part["cutoff_date"].iloc[0]).date()
        window_days = part["label_window_days"].to_numpy(dtype=float)
        _, variance = spend_given_purchase(btyd[cutoff], part, window_days)
        scale = np.exp(log_spend - log_spend_base(window))
        below, at_or_below = distribution.cdf(
            actual, prob, buyer_spend_base(window) * scale, variance * scale**2
        )
    pit = distribution.randomized_pit(below, at_or_below, np.random.default_rng(config.seed))
    return dict(
        zip(config.quantiles, distribution.calibrated_levels(pit, config.quantiles), strict=True)
    )


def train_for_anchor(
    anchor: str,
    examples: pd.DataFrame,
    config: TrainingConfig,
    btyd: Mapping[dt.date, BtydModel | None],
    what: str = "training",
) -> TrainingResult:
    """Train for one anchor of int_training_cutoffs (production or backtest) from the
    examples of its purposes: its own cutoffs train, its `_calibration*` ones calibrate a
    short history's levels, its `_season*` ones give the seasonal level. Other purposes
    (a holdout) are left out."""
    purpose = examples["purpose"].astype(str)
    return train_boosters(
        examples[purpose == anchor],
        config,
        btyd,
        what=what,
        calibration_examples=examples[purpose.str.startswith(f"{anchor}_calibration")],
        season_examples=examples[purpose.str.startswith(f"{anchor}_season")],
    )


def in_a_fixed_order(examples: pd.DataFrame) -> pd.DataFrame:
    """examples by cutoff and customer: a SQL table comes back in no fixed order, and with
    bagging, or the seeded draws of the randomised PITs, the same rows in another order
    would give another model or other levels."""
    require_columns(examples, ("customer_id", "cutoff_date"), "the training examples")
    return examples.sort_values(["cutoff_date", "customer_id"], kind="stable").reset_index(
        drop=True
    )


# Rounds are judged on a window in steps of this many trees.
ROUND_STEP = 10


def least_log_loss_rounds(
    booster: TrainedBooster, matrix: pd.DataFrame, log_odds: np.ndarray, purchased: np.ndarray
) -> int:
    """The number of the purchase booster's rounds (a multiple of ROUND_STEP, or all)
    whose log loss on a window (matrix, its base log_odds, whether each customer bought)
    is least; at least 1, as LightGBM reads 0 rounds as all of them."""
    trees = booster.booster.current_iteration()
    score = log_odds.astype(float).copy()

    def log_loss() -> float:
        return float(np.mean(np.logaddexp(0.0, score) - purchased * score))

    best_rounds, best_loss = 1, np.inf
    for start in range(0, trees, ROUND_STEP):
        step = min(ROUND_STEP, trees - start)
        score += booster.booster.predict(
            matrix, start_iteration=start, num_iteration=step, raw_score=True
        )
        if (loss := log_loss()) < best_loss:
            best_rounds, best_loss = start + step, loss
    return best_rounds


def _calibrated_on_a_refit(
    calibration_examples: pd.DataFrame | None,
    config: TrainingConfig,
    btyd: Mapping[dt.date, BtydModel | None],
    what: str,
) -> tuple[dict[float, float], str, int | None]:
    """Levels for a history shorter than two horizons, where they were read, and the
    purchase booster's rounds read there (None where there was no refit).

    calibration_examples holds a `*_calibration` purpose (the training cutoffs, anchored
    var calibration_window_days earlier) and a `*_calibration_holdout` one (its last
    days, int_training_cutoffs). The whole model is refitted on the former and each
    level read at the level-quantile of its PITs on the latter: on CDNOW's 39 weeks
    that put p90 near 0.89 where the configured levels left it at 0.87, and a shorter
    window (30 days) did worse.

    The latter is also such a history's one out-of-time window longer than its latest
    cutoff's, on which early stopping watches 30 days (CDNOW's 39 weeks: every booster
    ran to its last round): the purchase booster keeps at most the rounds where the
    refit's has its least log loss there. Not the others': a 91-day window's buyers,
    fewer purchases each, rewarded far fewer spend rounds than the 273-day horizon's
    did (pinball loss 10.43 against 10.35 on CDNOW), and the expected-spend booster's
    Poisson loss there, ruled by its few largest buyers, chose 30-90 rounds that cost
    RMSE on two histories of three (docs/model.md).
    """
    configured = dict(zip(config.quantiles, config.quantiles, strict=True))
    if calibration_examples is None or calibration_examples.empty:
        return configured, "levels as configured: no validation window spans the horizon", None
    purpose = calibration_examples["purpose"].astype(str)
    train = calibration_examples[~purpose.str.endswith("_holdout")]
    holdout = in_a_fixed_order(calibration_examples[purpose.str.endswith("_holdout")])
    if train.empty or holdout.empty or train["cutoff_date"].nunique() < 2:
        return (
            configured,
            (
                "levels as configured: no validation window spans the horizon, and the history"
                " is too short to refit the model on windows before the last"
                " calibration_window_days"
            ),
            None,
        )
    try:
        refit = train_boosters(train, config, btyd, what=f"{what} calibration refit")
    except NoReturningBuyers:
        return (
            configured,
            "levels as configured: no customer spent anything in the refit's windows before the"
            " last calibration_window_days",
            None,
        )
    prepared = prepare_examples(holdout, btyd)
    purchase, *spend, _ = refit.boosters
    rounds = least_log_loss_rounds(
        purchase, prepared.matrix, prepared.purchase_base, prepared.has_purchase
    )
    purchase = purchase.stopped_at(rounds)
    levels = _calibrated_levels(
        holdout,
        prepared,
        np.arange(len(holdout)),
        purchase,
        spend,
        btyd,
        config,
        refit.spend_level,
    )
    cutoff = pd.Timestamp(holdout["cutoff_date"].iloc[0]).date()
    days = int(holdout["label_window_days"].iloc[0])
    return (
        levels,
        (
            f"levels read on the {days} days after {cutoff}, the model refitted on the history"
            " before them (no validation window spans the horizon)"
        ),
        rounds,
    )


def train_boosters(
    examples: pd.DataFrame,
    config: TrainingConfig,
    btyd: Mapping[dt.date, BtydModel | None],
    what: str = "training",
    calibration_examples: pd.DataFrame | None = None,
    season_examples: pd.DataFrame | None = None,
) -> TrainingResult:
    """Train the boosters and calibrate the quantile levels.

    - prob_purchase (binary): who buys in the window, on BTYD's log-odds.
    - spend_given_purchase (quantile, one per level of distribution.SPEND_GRID): log
      spend in the window among buyers, on BTYD's log spend given a purchase; where
      fewer than config.min_spend_buyers buyers train, BTYD's own spend given a purchase.
    - expected_spend (poisson): spend in the window, on BTYD's log expected spend,
      labels divided by each cutoff's level; it ranks the customers.

    btyd holds the BTYD fit at each cutoff date of the examples (see prepare_examples);
    what names the work in the progress lines. The quantile levels are read on the
    validation window when it spans the horizon; else on calibration_examples when
    given (see _calibrated_on_a_refit); else they stay as configured. season_examples
    (the `*_season` cutoffs) give the horizon's seasonal level (clv.season). The examples are
    put in a fixed order first (in_a_fixed_order).
    """
    examples = in_a_fixed_order(examples)
    prepared = prepare_examples(examples, btyd)
    # Large bases are already sampled by customer in SQL (var max_training_rows).
    train_rows = np.flatnonzero(prepared.is_training)
    valid_rows = np.flatnonzero(prepared.is_validation)
    buyers = prepared.actual > 0
    train_buyers = train_rows[buyers[train_rows]]
    valid_buyers = valid_rows[buyers[valid_rows]]
    if train_buyers.size == 0:
        raise NoReturningBuyers(
            f"{what}: no customer spent anything in a label window after a training cutoff"
            f" ({train_rows.size:,} examples, every label 0), so the boosters have nothing to learn"
        )
    learns_spend = train_buyers.size >= config.min_spend_buyers

    def dataset(rows: np.ndarray, label: np.ndarray, init: np.ndarray) -> lgb.Dataset | None:
        if rows.size == 0:
            return None
        return lgb.Dataset(
            prepared.matrix.iloc[rows],
            label=label[rows],
            init_score=init[rows],
            feature_name=list(MODEL_FEATURES),
            free_raw_data=False,
        )

    count = 2 + (len(distribution.SPEND_GRID) if learns_spend else 0)
    rounds = Progress(
        f"{what}, {count} boosters on {train_rows.size:,} examples",
        config.num_boost_round * count,
        "rounds at most (early stopping ends sooner)",
    )

    def train(
        target: str,
        objective: str,
        rows: tuple[np.ndarray, np.ndarray],
        label: np.ndarray,
        init: np.ndarray,
        **extra: float,
    ) -> TrainedBooster:
        parameters = _parameters(config, objective, **extra)
        booster, best, metric, curve = _fit(
            parameters, dataset(rows[0], label, init), dataset(rows[1], label, init), config, rounds
        )
        return TrainedBooster(
            target,
            objective,
            booster,
            best,
            metric,
            curve[best - 1] if curve else None,
            parameters,
            extra.get("alpha"),
            curve,
        )

    purchase = train(
        "prob_purchase",
        "binary",
        (train_rows, valid_rows),
        prepared.has_purchase.astype(float),
        prepared.purchase_base,
    )
    spend: list[TrainedBooster] = []
    if learns_spend:
        log_spend = np.log(np.where(buyers, prepared.actual, 1.0))
        spend = [
            train(
                "spend_given_purchase",
                "quantile",
                (train_buyers, valid_buyers),
                log_spend,
                prepared.spend_base,
                alpha=level,
            )
            for level in distribution.SPEND_GRID
        ]
        spend_model = (
            f"quantile boosters at the levels {', '.join(map(str, distribution.SPEND_GRID))}"
            f" on {train_buyers.size:,} buyers"
        )
    else:
        spend_model = (
            f"BTYD's: {train_buyers.size:,} buyers in the training windows, fewer than the"
            f" {config.min_spend_buyers:,} the quantile boosters need"
        )
    expected = train(
        "expected_spend",
        "poisson",
        (train_rows, valid_rows),
        prepared.expected_label,
        prepared.expected_base,
    )
    rounds.done()

    if valid_rows.size and bool(spans_horizon(examples)[valid_rows].all()):
        levels = _calibrated_levels(
            examples,
            prepared,
            valid_rows,
            purchase,
            spend,
            btyd,
            config,
            prepared.spend_level,
        )
        validation_cutoff = pd.Timestamp(examples["cutoff_date"].iloc[valid_rows[0]]).date()
        calibration = f"levels read on the validation window after {validation_cutoff}"
    else:
        levels, calibration, purchase_rounds = _calibrated_on_a_refit(
            calibration_examples, config, btyd, what
        )
        if purchase_rounds is not None:
            purchase = purchase.stopped_at(purchase_rounds)
            calibration += (
                f"; the purchase booster keeps {purchase.best_iteration} rounds, at most where"
                " the refit's log loss there is least"
            )
    cutoffs = pd.to_datetime(examples["cutoff_date"]).dt.date.astype(str).to_numpy()
    return TrainingResult(
        boosters=[purchase, *spend, expected],
        calibrated_levels=levels,
        training_cutoffs=sorted(set(cutoffs[train_rows])),
        validation_cutoff=str(cutoffs[valid_rows][0]) if valid_rows.size else None,
        training_rows=int(train_rows.size),
        validation_rows=int(valid_rows.size),
        cutoff_levels=prepared.cutoff_levels,
        spend_model=spend_model,
        calibration=calibration,
        spend_level=prepared.spend_level,
        season=seasonal_level(
            season_examples,
            btyd,
            int(examples["horizon_days"].iloc[0]),
            usual_ratios=[
                prepared.cutoff_levels[str(cutoff.date())]
                for cutoff in pd.to_datetime(
                    examples.loc[spans_horizon(examples), "cutoff_date"]
                ).drop_duplicates()
            ],
            enabled=config.seasonal_level,
        ),
    )
