"""The package's training and scoring functions on tiny frames and tiny boosters."""

from __future__ import annotations

import datetime as dt

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

from clv import distribution
from clv.btyd_fits import fit_at, fit_per_cutoff, fits_table, model_from_row, models_by_cutoff
from clv.drivers import (
    DRIVERS_SCHEMA,
    OTHER_FEATURES,
    contributions,
    drivers_reader,
    leaf_credits,
    top_drivers,
)
from clv.features import SQL_FEATURES, btyd_forecasts, buyer_spend_base, spend_given_purchase
from clv.registry import new_model_version, registry_rows, write_model_files
from clv.scoring import (
    ScoringModel,
    SpendTotals,
    booster_inputs,
    forecast_of,
    score_frame,
    score_reader,
)
from clv.training import (
    MIN_SPEND,
    ROUND_STEP,
    NoReturningBuyers,
    TrainedBooster,
    TrainingConfig,
    least_log_loss_rounds,
    prepare_examples,
    quantile_column,
    time_split,
    train_boosters,
)

TINY = TrainingConfig(
    num_threads=1, num_boost_round=30, min_data_in_leaf=5, num_leaves=7, min_spend_buyers=50
)
TARGETS = ["prob_purchase", *["spend_given_purchase"] * 3, "expected_spend"]
AS_OF = dt.date(2025, 6, 30)


def customer_features(customers: int, rng: np.random.Generator) -> pd.DataFrame:
    """Features that obey the SQL definition's invariants (recency <= tenure, ...)."""
    tenure = rng.integers(0, 600, customers)
    # Purchase days are distinct days, so there are at most tenure + 1 of them and a
    # repeat buyer's last purchase comes after the first one.
    purchase_days = np.minimum(1 + rng.poisson(np.maximum(tenure, 1) / 90), tenure + 1)
    recency = np.minimum(rng.integers(0, 400, customers), tenure - (purchase_days > 1))
    order_value = rng.gamma(3.0, 20.0, customers)
    frame = pd.DataFrame({name: np.zeros(customers) for name in SQL_FEATURES})
    frame["customer_id"] = [f"{i:05d}" for i in range(customers)]
    frame["tenure_days"] = tenure
    frame["recency_days"] = recency
    frame["purchase_days"] = purchase_days
    frame["order_count"] = purchase_days
    frame["order_value_mean"] = order_value
    frame["repeat_purchase_day_value_mean"] = np.where(purchase_days > 1, order_value, np.nan)
    frame["net_spend"] = purchase_days * order_value
    frame["purchase_days_last_90d"] = np.minimum(purchase_days, (recency < 90).astype(int))
    return frame


def training_examples(customers: int = 400, cutoffs: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for rank in range(1, cutoffs + 1):
        frame = customer_features(customers, rng)
        frame["cutoff_date"] = pd.Timestamp(AS_OF) - pd.Timedelta(days=30 * rank)
        frame["cutoff_rank"] = rank
        frame["label_window_days"] = min(30 * rank, 90)
        frame["horizon_days"] = 90
        active = rng.random(customers) < 1 / (1 + frame["recency_days"] / 60)
        frame["label_net_spend"] = np.where(active, frame["order_value_mean"] * 1.5, 0.0)
        frame["label_has_purchase"] = active
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def btyd_at_cutoffs(examples: pd.DataFrame) -> dict:
    """Each cutoff's BTYD model as training reads it: fitted, stored as rows, read back."""
    purposes = examples[["cutoff_date"]].assign(purpose="production")
    fitted_at = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)
    return models_by_cutoff(fits_table(fit_per_cutoff(examples), purposes, fitted_at).to_pandas())


def train(examples: pd.DataFrame, config: TrainingConfig = TINY):
    """Boosters on examples, each cutoff's BTYD fitted as btyd_fits fits it."""
    return train_boosters(examples, config, btyd_at_cutoffs(examples))


def scoring_features(customers: int = 250) -> pd.DataFrame:
    frame = customer_features(customers, np.random.default_rng(9))
    frame["as_of_date"] = AS_OF
    frame["horizon_days"] = 90
    return frame


@pytest.fixture(scope="module")
def trained() -> tuple[pd.DataFrame, ScoringModel]:
    return registered_model()


def buyers_trained_on() -> int:
    """Buyers in the training windows of training_examples() (the latest is held out)."""
    examples = training_examples()
    return int(((examples["cutoff_rank"] > 1) & (examples["label_net_spend"] > 0)).sum())


def register(result, version: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(registry rows, btyd_fits rows) of a training result, with a BTYD fit at AS_OF."""
    trained_at = dt.datetime(2025, 7, 1, 12, tzinfo=dt.UTC)
    fits = fits_table(
        {AS_OF: fit_at(AS_OF, scoring_features())},
        pd.DataFrame({"cutoff_date": [AS_OF], "purpose": ["scoring"]}),
        trained_at,
    ).to_pandas()
    [fit_id] = fits["btyd_fit_id"]
    version = version or new_model_version(trained_at)
    return registry_rows(result, version, trained_at, AS_OF, 90, fit_id), fits


def registered_model() -> tuple[pd.DataFrame, ScoringModel]:
    """Tiny boosters on training_examples(), registered with a BTYD fit at AS_OF."""
    registry, fits = register(train(training_examples()))
    return registry, ScoringModel.from_registry(registry, fits)


def test_time_split_validates_on_the_latest_full_window_after_all_training_windows() -> None:
    examples = training_examples(customers=5, cutoffs=8)  # cutoffs 30..240 days back
    is_training, is_validation = time_split(examples)
    days_back = (pd.Timestamp(AS_OF) - pd.to_datetime(examples["cutoff_date"])).dt.days
    assert set(days_back[is_validation]) == {90}  # the latest 90-day window
    assert set(days_back[is_training]) == {180, 210, 240}  # windows ended by then
    short = training_examples(customers=5, cutoffs=2)  # no full window: hold out the latest
    is_training, is_validation = time_split(short)
    assert set(short["cutoff_rank"][is_validation]) == {1}
    assert set(short["cutoff_rank"][is_training]) == {2}


def test_quantile_columns_follow_the_levels() -> None:
    assert [quantile_column(level) for level in (0.1, 0.5, 0.9, 0.025)] == [
        "spend_p10",
        "spend_p50",
        "spend_p90",
        "spend_p2_5",
    ]


def test_registry_has_one_row_per_booster(trained, tmp_path) -> None:
    registry, _ = trained
    assert list(registry["target"]) == TARGETS
    assert list(registry["quantile_level"].fillna(0)) == [0, *distribution.SPEND_GRID, 0]
    assert list(registry["objective"]) == ["binary", *["quantile"] * 3, "poisson"]
    assert set(registry["spend_model"]) == {
        f"quantile boosters at the levels 0.1, 0.5, 0.9 on {buyers_trained_on():,} buyers"
    }
    assert registry["model_version"].nunique() == 1
    assert registry["model_version"].iloc[0] == "m20250701T120000Z"
    # The most recent cutoff is held out: a later window than every training cutoff.
    assert set(registry["validation_cutoff"]) == {"2025-05-31"}
    assert (registry["training_cutoffs"] == '["2025-04-01", "2025-05-01"]').all()
    assert (registry["validation_rows"] == 400).all()
    files = write_model_files(registry, {"btyd_fit_id": "b"}, tmp_path)
    spend = [f"spend_given_purchase_p{level}.txt" for level in (10, 50, 90)]
    targets = ["prob_purchase.txt", *spend, "expected_spend.txt"]
    assert sorted(path.name for path in files) == sorted([*targets, "btyd.json"])
    assert files[0].read_text().startswith("tree")


def test_forecasts_are_ordered_non_negative_probabilities(trained) -> None:
    _, model = trained
    features = scoring_features()
    scored_at = dt.datetime(2025, 7, 1)
    forecast = score_frame(model, features, scored_at)
    assert len(forecast) == len(features)
    assert list(forecast["customer_id"]) == list(features["customer_id"])
    assert (forecast["expected_spend"] >= 0).all()
    assert (forecast["spend_p10"] >= 0).all()
    assert (forecast["spend_p10"] <= forecast["spend_p50"]).all()
    assert (forecast["spend_p50"] <= forecast["spend_p90"]).all()
    assert forecast["prob_purchase"].between(0, 1).all()
    assert (forecast["model_version"] == model.model_version).all()


def test_streamed_scoring_equals_scoring_at_once(trained) -> None:
    _, model = trained
    features = scoring_features(300)
    scored_at = dt.datetime(2025, 7, 1)
    batches = pa.Table.from_pandas(features, preserve_index=False).to_batches(max_chunksize=64)
    reader = score_reader(
        model, lambda: pa.RecordBatchReader.from_batches(batches[0].schema, batches), scored_at
    )
    streamed = reader.read_all().to_pandas()
    whole = score_frame(model, features, scored_at)
    assert len(batches) == 5
    np.testing.assert_allclose(streamed["expected_spend"], whole["expected_spend"])
    np.testing.assert_allclose(streamed["spend_p90"], whole["spend_p90"])


def test_the_total_stays_at_the_btyd_level(trained) -> None:
    _, model = trained
    features = scoring_features(300)
    forecast = score_frame(model, features, dt.datetime(2025, 7, 1))
    base = btyd_forecasts(model.btyd, features, np.full(len(features), 90.0))
    assert forecast["expected_spend"].sum() == pytest.approx(base["btyd_expected_spend"].sum())
    # The booster still reshapes: customers are not all scaled alike.
    ratio = forecast["expected_spend"] / base["btyd_expected_spend"].clip(lower=0.01)
    assert ratio.std() > 0.01
    # Expected spend is the expected-spend booster's correction of BTYD's, at the level.
    _, matrix = booster_inputs(model, features)
    corrected = np.maximum(base["btyd_expected_spend"], MIN_SPEND) * np.exp(
        model.expected_spend.predict(matrix, raw_score=True)
    )
    level = forecast["expected_spend"].sum() / corrected.sum()
    np.testing.assert_allclose(forecast["expected_spend"], corrected * level)


@pytest.mark.parametrize("model_total", [np.inf, np.nan])
def test_a_total_that_is_not_a_number_stops_the_scoring(model_total: float) -> None:
    # Before, BTYD's total over an infinite one was a level of 0: every forecast 0.
    totals = SpendTotals(btyd=1000.0, model=model_total)
    with pytest.raises(ValueError, match="does not add up to a finite total"):
        _ = totals.level
    assert SpendTotals(btyd=1000.0, model=500.0).level == 2.0


def test_training_is_deterministic_whatever_the_row_order() -> None:
    examples = training_examples(seed=1)
    first = train(examples)
    # A SQL table has no fixed row order.
    second = train(examples.sample(frac=1.0, random_state=3))
    for a, b in zip(first.boosters, second.boosters, strict=True):
        assert a.booster.model_to_string() == b.booster.model_to_string()


def test_each_cutoff_level_is_put_into_its_base() -> None:
    # The same customers at two cutoffs, the earlier window ten times busier.
    calm = training_examples(cutoffs=1)
    hot = calm.assign(
        cutoff_rank=2,
        cutoff_date=calm["cutoff_date"] - pd.Timedelta(days=30),
        label_net_spend=calm["label_net_spend"] * 10,
        label_has_purchase=calm["label_has_purchase"] | (np.arange(len(calm)) % 2 == 0),
    )
    examples = pd.concat([calm, hot], ignore_index=True)
    prepared = prepare_examples(examples, btyd_at_cutoffs(examples))
    levels = prepared.cutoff_levels
    assert levels["2025-05-01"] == pytest.approx(10 * levels["2025-05-31"], rel=1e-6)
    # Each window's base sits at its own purchase rate: the booster learns who buys
    # more often than BTYD says, not which window was busier.
    for rank in (1, 2):
        rows = (examples["cutoff_rank"] == rank).to_numpy()
        base = 1 / (1 + np.exp(-prepared.purchase_base[rows]))
        assert base.mean() == pytest.approx(prepared.has_purchase[rows].mean(), rel=1e-6)


def test_base_falls_back_to_rate_extrapolation_without_repeat_buyers() -> None:
    features = scoring_features(50).assign(purchase_days=1, recency_days=0)
    fit = fit_at(AS_OF, features)
    assert fit.model is None
    assert fit.bgnbd_log_likelihood is None
    base = btyd_forecasts(None, features, np.full(50, 90.0))
    expected = features["net_spend"] / features["tenure_days"].clip(lower=1) * 90
    np.testing.assert_allclose(base["btyd_expected_spend"], expected)


def latest_window_changed(examples: pd.DataFrame, spread: float, level: float) -> pd.DataFrame:
    """The latest window's buyers' spend times exp(+-spread) at random (wider, the same
    level) and then times level (the same spread, another level)."""
    latest = examples["cutoff_rank"] == 1
    sign = np.where(np.random.default_rng(5).random(len(examples)) < 0.5, -1.0, 1.0)
    label = examples["label_net_spend"].where(
        ~latest, examples["label_net_spend"] * np.exp(sign * spread) * level
    )
    return examples.assign(label_net_spend=label)


def test_the_purchase_boosters_rounds_are_read_where_its_log_loss_on_a_window_is_least() -> None:
    # A fast learning rate on few rows overfits: the log loss on a window the booster did
    # not see falls, then rises. The rounds read are where LightGBM's own metric on that
    # window is least, among multiples of ROUND_STEP.
    rng = np.random.default_rng(7)

    def window(rows: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        matrix = pd.DataFrame(rng.normal(size=(rows, 4)), columns=list("abcd"))
        log_odds = rng.normal(scale=0.5, size=rows) - 1.0
        score = log_odds + 0.8 * matrix["a"].to_numpy()
        return matrix, log_odds, (rng.random(rows) < 1 / (1 + np.exp(-score))).astype(float)

    (train_x, train_base, train_y), (later_x, later_base, later_y) = window(1500), window(1500)
    parameters = {"objective": "binary", "learning_rate": 0.1, "num_leaves": 7}
    history: dict = {}
    booster = lgb.train(
        {**parameters, "min_data_in_leaf": 5, "verbosity": -1, "seed": 1, "num_threads": 1},
        lgb.Dataset(train_x, train_y, init_score=train_base),
        num_boost_round=120,
        valid_sets=[lgb.Dataset(later_x, later_y, init_score=later_base)],
        callbacks=[lgb.record_evaluation(history)],
    )
    [curve] = history["valid_0"].values()
    at_steps = np.asarray(curve)[ROUND_STEP - 1 :: ROUND_STEP]
    trained = TrainedBooster("prob_purchase", "binary", booster, 120, None, None, parameters)
    rounds = least_log_loss_rounds(trained, later_x, later_base, later_y)
    assert rounds == ROUND_STEP * (1 + int(np.argmin(at_steps)))
    assert ROUND_STEP <= rounds < 60


def test_quantiles_are_recalibrated_on_a_full_window_for_its_spread_not_its_level() -> None:
    # Eight monthly cutoffs: the latest 90-day window validates (see the time split).
    full = training_examples(cutoffs=8).query("cutoff_rank >= 3")
    full = full.assign(cutoff_rank=full["cutoff_rank"] - 2)
    as_trained = train(full).calibrated_levels
    # Spend given a purchase far wider than in the training windows: p90 is read higher.
    wider = train(latest_window_changed(full, spread=1.5, level=1.0)).calibrated_levels
    assert wider[0.9] > as_trained[0.9] + 0.02
    # Two cutoffs, windows of 30 and 60 days: shorter than the 90-day horizon, so the
    # held-out window only stops the boosting; its spread says little about 90 days.
    short = latest_window_changed(training_examples(cutoffs=2), spread=1.5, level=1.0)
    assert train(short).calibrated_levels == {0.1: 0.1, 0.5: 0.5, 0.9: 0.9}


def test_a_short_history_reads_its_levels_on_a_refit_for_the_spread_not_the_level() -> None:
    # Windows of 30, 60 and 90 days before a 90-day horizon: none spans it after two
    # others, so the model is refitted on earlier cutoffs (purpose *_calibration) and
    # the levels are read on the last 30 days (*_calibration_holdout).
    production = training_examples(cutoffs=3)
    earlier = training_examples(cutoffs=3, seed=1)
    earlier = earlier.assign(
        cutoff_date=earlier["cutoff_date"] - pd.Timedelta(days=30),
        purpose="production_calibration",
    )
    holdout = training_examples(cutoffs=1, seed=2).assign(
        cutoff_date=pd.Timestamp(AS_OF) - pd.Timedelta(days=45),
        purpose="production_calibration_holdout",
    )
    btyd = btyd_at_cutoffs(pd.concat([production, earlier, holdout]))

    def levels_read(last_days: pd.DataFrame) -> dict[float, float]:
        result = train_boosters(
            production, TINY, btyd, calibration_examples=pd.concat([earlier, last_days])
        )
        assert result.calibration.startswith("levels read on the 30 days after")
        return result.calibrated_levels

    as_they_were = levels_read(holdout)
    assert as_they_were != {0.1: 0.1, 0.5: 0.5, 0.9: 0.9}
    # The last days are also the purchase booster's one window longer than the latest
    # cutoff's: it keeps at most the rounds where the refit's log loss there is least.
    result = train_boosters(
        production, TINY, btyd, calibration_examples=pd.concat([earlier, holdout])
    )
    own = train_boosters(production, TINY, btyd).boosters
    refit = train_boosters(earlier, TINY, btyd).boosters
    last_days = prepare_examples(holdout, btyd)
    read = least_log_loss_rounds(
        refit[0], last_days.matrix, last_days.purchase_base, last_days.has_purchase
    )
    purchase = result.boosters[0]
    assert purchase.best_iteration == min(own[0].best_iteration, read) < own[0].best_iteration
    assert purchase.validation_metric == purchase.validation_curve[purchase.best_iteration - 1]
    assert f"booster keeps {purchase.best_iteration} rounds" in result.calibration
    kept = [(b.best_iteration, b.validation_metric) for b in result.boosters[1:]]
    assert kept == [(b.best_iteration, b.validation_metric) for b in own[1:]]
    # The same rows in another order, as SQL may return them: the same levels (the
    # PITs' seeded draws follow the rows).
    assert levels_read(holdout.sample(frac=1.0, random_state=3)) == as_they_were
    wider = levels_read(latest_window_changed(holdout, spread=1.5, level=1.0))
    assert wider[0.9] > as_they_were[0.9] + 0.02
    # Every buyer spending three times as much, or a third, is that window's level,
    # which the horizon need not share (training takes each window's level out): the
    # levels do not move. Read as spread, p90 had gone to 0.999 or fallen.
    for level in (3.0, 1 / 3):
        busy = levels_read(latest_window_changed(holdout, spread=0.0, level=level))
        assert busy == pytest.approx(as_they_were, abs=1e-9), level


def test_without_a_returning_buyer_training_says_so_and_a_refit_keeps_the_levels() -> None:
    """Every label 0 (one-off buyers; the SQL refuses such a file first): one sentence,
    not LightGBM's "sum of labels is zero". A calibration refit without buyers leaves
    the levels as configured."""
    production = training_examples(cutoffs=3)
    nobody = production.assign(label_net_spend=0.0, label_has_purchase=False)
    earlier = nobody.assign(
        cutoff_date=nobody["cutoff_date"] - pd.Timedelta(days=30), purpose="production_calibration"
    )
    holdout = training_examples(cutoffs=1, seed=2).assign(
        cutoff_date=pd.Timestamp(AS_OF) - pd.Timedelta(days=45),
        purpose="production_calibration_holdout",
    )
    btyd = btyd_at_cutoffs(pd.concat([production, earlier, holdout]))
    with pytest.raises(NoReturningBuyers, match="no customer spent anything .* every label 0"):
        train_boosters(nobody, TINY, btyd)
    result = train_boosters(
        production, TINY, btyd, calibration_examples=pd.concat([earlier, holdout])
    )
    assert result.calibrated_levels == {0.1: 0.1, 0.5: 0.5, 0.9: 0.9}
    assert result.calibration.startswith("levels as configured: no customer spent anything")


def test_the_distribution_is_a_zero_inflated_log_normal() -> None:
    prob, mean, variance = np.array([0.3, 0.8]), np.array([50.0, 120.0]), np.array([900.0, 1e4])
    q = distribution.quantiles(prob, mean, variance, (0.5, 0.7, 0.95))
    assert q[0, 0] == q[0, 1] == 0 < q[0, 2]  # 70% buy nothing: p50 and p70 are no spend
    sigma = np.sqrt(np.log1p(variance / mean**2))
    buyers = stats.lognorm(sigma[1], scale=mean[1] * np.exp(-(sigma[1] ** 2) / 2))
    assert buyers.mean() == pytest.approx(mean[1]) and buyers.var() == pytest.approx(variance[1])
    np.testing.assert_allclose(q[1], buyers.ppf((np.array([0.5, 0.7, 0.95]) - 0.2) / 0.8))
    below, at_or_below = distribution.cdf(np.array([0.0, q[1, 2]]), prob, mean, variance)
    np.testing.assert_allclose([below[0], at_or_below[0], at_or_below[1]], [0.0, 0.7, 0.95])


def test_calibrated_levels_make_a_wrong_distribution_honest() -> None:
    rng = np.random.default_rng(4)

    def outcomes(n: int) -> np.ndarray:  # 60% spend nothing; buyers log-normal(4, 1.5)
        return np.where(rng.random(n) < 0.6, 0.0, np.exp(rng.normal(4.0, 1.5, n)))

    # Believed: half buy, spending 40 on average give or take 30: too many buyers,
    # too little spend, too narrow a spread.
    n = 20_000
    believed = (np.full(n, 0.5), np.full(n, 40.0), np.full(n, 900.0))
    levels = (0.1, 0.5, 0.9)
    pit = distribution.randomized_pit(*distribution.cdf(outcomes(n), *believed), rng)
    read = distribution.calibrated_levels(pit, levels)
    later = outcomes(n)[:, None]  # a fresh sample of the same process
    as_believed = distribution.quantiles(*believed, levels)
    honest = distribution.quantiles(*believed, read)
    assert (later <= as_believed).mean(axis=0)[2] < 0.85  # p90 far too low as believed
    assert ((later < honest).mean(axis=0) <= np.array(levels) + 0.01).all()
    assert ((later <= honest).mean(axis=0) >= np.array(levels) - 0.01).all()


def test_any_levels_work_and_quantiles_never_cross() -> None:
    levels = (0.025, 0.3, 0.31, 0.75, 0.975)
    config = TrainingConfig(
        quantiles=levels, num_threads=1, num_boost_round=30, min_data_in_leaf=5, num_leaves=7
    )
    result = train(training_examples(cutoffs=8).query("cutoff_rank >= 3"), config)
    reads = [result.calibrated_levels[level] for level in levels]
    assert reads == sorted(reads) and all(0 < read < 1 for read in reads)
    registry, fits = register(result, "m1")
    forecast = score_frame(ScoringModel.from_registry(registry, fits), scoring_features(), AS_OF)
    columns = [quantile_column(level) for level in levels]
    assert list(forecast.columns[4:9]) == columns
    assert (np.diff(forecast[columns].to_numpy(), axis=1) >= 0).all()
    assert (forecast[columns[-1]] > 0).any()


def test_quantiles_grow_with_the_btyd_forecast_of_the_horizon(trained) -> None:
    _, model = trained
    features = scoring_features()
    btyd = model.btyd
    scored_at = dt.datetime(2025, 7, 1)
    quarter = score_frame(model, features, scored_at)
    year = score_frame(model, features.assign(horizon_days=365), scored_at)
    base = btyd_forecasts(btyd, features, np.full(len(features), 90.0))["btyd_expected_spend"]
    longer = btyd_forecasts(btyd, features, np.full(len(features), 365.0))["btyd_expected_spend"]
    growth = longer.sum() / base.sum()
    # Spend given a purchase is BTYD's, so the BTYD forecast carries the horizon.
    assert year["spend_p90"].sum() / quarter["spend_p90"].sum() == pytest.approx(growth, rel=0.35)
    assert growth > 2


def test_clear_errors_for_unusable_input(trained) -> None:
    registry, _ = trained
    with pytest.raises(ValueError, match="no training examples"):
        prepare_examples(training_examples().iloc[0:0], {})
    with pytest.raises(ValueError, match="lacks the column"):
        prepare_examples(training_examples().drop(columns=["label_net_spend"]), {})
    with pytest.raises(ValueError, match="no BTYD fit for the training cutoff 2025-05-31"):
        prepare_examples(training_examples(cutoffs=1), {})
    fits = pd.DataFrame({"btyd_fit_id": [], "method": [], "parameters": []})
    with pytest.raises(ValueError, match="registry is empty"):
        ScoringModel.from_registry(registry.iloc[0:0], fits)
    with pytest.raises(ValueError, match="m1999 is not in the registry"):
        ScoringModel.from_registry(registry, fits, "m1999")
    with pytest.raises(ValueError, match="rests on the BTYD fit btyd2025.* not in btyd_fits"):
        ScoringModel.from_registry(registry, fits)
    with pytest.raises(ValueError, match="registered before its BTYD fit was stored"):
        ScoringModel.from_registry(registry.assign(btyd_fit_id=None), fits)
    earlier = registry.drop(columns="calibrated_levels").assign(objective="quantile")
    with pytest.raises(ValueError, match="trained by an earlier release .* stays in the registry"):
        ScoringModel.from_registry(earlier, fits)
    with pytest.raises(ValueError, match="quantiles must lie strictly between 0 and 1"):
        TrainingConfig(quantiles=(0.5, 1.0))


def test_one_fit_per_date_serves_every_purpose_there_and_round_trips_exactly() -> None:
    examples = training_examples(cutoffs=2)
    fits = fit_per_cutoff(examples)
    later, earlier = sorted(fits, reverse=True)
    purposes = pd.DataFrame(
        {
            "cutoff_date": [later, later, earlier],
            "purpose": ["production", "backtest_holdout", "production"],
        }
    )
    table = fits_table(fits, purposes, dt.datetime(2025, 7, 1, 12, tzinfo=dt.UTC)).to_pandas()
    assert len(table) == 3
    assert table["btyd_fit_id"].nunique() == 2
    shared = table[table["cutoff_date"] == later]
    assert shared["btyd_fit_id"].nunique() == 1 and shared["parameters"].nunique() == 1
    assert shared["btyd_fit_id"].iloc[0] == "btyd20250701T120000Z_20250531"
    assert (table["customers"] == 400).all() and (table["customers_fitted"] == 400).all()
    assert (table["bgnbd_log_likelihood"] < 0).all()
    for row in table.itertuples():
        assert model_from_row(row.method, row.parameters) == fits[row.cutoff_date].model


def test_a_path_credits_each_split_with_how_far_it_moves_the_trees_expected_value() -> None:
    # On stumps (one split a tree) the credit of the path taken is TreeSHAP's exactly:
    # LightGBM's pred_contrib is the reference computed apart from clv.drivers.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2_000, 4))
    y = 2.0 * x[:, 0] - x[:, 2] + rng.normal(scale=0.1, size=2_000)
    parameters = {"num_leaves": 2, "min_data_in_leaf": 20, "verbosity": -1, "seed": 1}
    stumps = lgb.train(parameters, lgb.Dataset(x, y), num_boost_round=40)
    credits = leaf_credits(stumps)
    credit = credits.of(stumps.predict(x, pred_leaf=True))
    shap = stumps.predict(x, pred_contrib=True)
    np.testing.assert_allclose(credit, shap[:, :-1], atol=1e-9)
    assert credits.bias == pytest.approx(shap[0, -1], abs=1e-12)
    assert np.abs(credit[:, 1]).max() == 0 and np.abs(credit[:, 0]).max() > 1

    # Deeper trees: the credits still add up to the raw score from the same bias.
    deep = lgb.train({**parameters, "num_leaves": 15}, lgb.Dataset(x, y), num_boost_round=20)
    credits = leaf_credits(deep)
    credit = credits.of(deep.predict(x, pred_leaf=True))
    np.testing.assert_allclose(credit.sum(axis=1) + credits.bias, deep.predict(x, raw_score=True))
    assert credits.bias == pytest.approx(deep.predict(x[:1], pred_contrib=True)[0, -1], abs=1e-9)


def test_drivers_add_up_to_the_raw_score_and_are_the_largest(trained) -> None:
    _, model = trained
    features = scoring_features(300)
    drivers = top_drivers(model, features).to_pandas()
    assert list(drivers["rank"][:4]) == [1, 2, 3, 4] and len(drivers) == 4 * len(features)
    assert (drivers.loc[drivers["rank"] == 4, "feature"] == OTHER_FEATURES).all()
    assert drivers.loc[drivers["rank"] == 4, "feature_value"].isna().all()

    # Checked against LightGBM's own raw score and TreeSHAP's bias, computed apart from
    # the drivers: the expected-spend booster's, in log expected spend on top of BTYD's.
    _, matrix = booster_inputs(model, features)
    raw = model.expected_spend.predict(matrix, raw_score=True)
    [bias] = set(model.expected_spend.predict(matrix, pred_contrib=True)[:, -1])
    sums = drivers.groupby("customer_id", sort=False)["contribution"].sum().to_numpy()
    np.testing.assert_allclose(sums + bias, raw, rtol=0, atol=1e-6)
    assert np.abs(raw - bias).max() > 0.05  # the customers' scores really differ

    _, contrib = contributions(model, features)
    top = drivers[drivers["rank"] <= 3]
    sizes = np.sort(np.abs(contrib[:, :-1]), axis=1)[:, ::-1][:, :3].ravel()
    np.testing.assert_array_equal(np.abs(top["contribution"].to_numpy()), sizes)
    index = [model.feature_names.index(name) for name in top["feature"]]
    np.testing.assert_array_equal(
        top["feature_value"].to_numpy(), matrix.to_numpy("float32")[np.repeat(range(300), 3), index]
    )
    # The streamed table equals the table at once.
    batches = pa.Table.from_pandas(features, preserve_index=False).to_batches(max_chunksize=64)
    streamed = drivers_reader(
        model, lambda: pa.RecordBatchReader.from_batches(batches[0].schema, batches)
    ).read_all()
    assert streamed.schema == DRIVERS_SCHEMA
    pd.testing.assert_frame_equal(streamed.to_pandas(), drivers)


def test_the_total_interval_matches_simulated_totals(trained) -> None:
    _, model = trained
    features = scoring_features(300)
    scored = score_frame(model, features, dt.datetime(2025, 7, 1))
    total_sd = float(np.sqrt((scored["spend_sd"] ** 2).sum()))

    # Each customer buys or not on his own, then spends an amount drawn from his spend
    # given a purchase: the totals' spread over many simulated windows is the interval's.
    found = forecast_of(model, features)
    rng = np.random.default_rng(3)
    draws = 4_000
    buys = rng.random((draws, 300)) < found.prob
    levels = rng.random((draws, 300))
    spend = np.exp(
        distribution.grid_log_quantile(
            levels.ravel(), np.repeat(found.log_quantiles[None], draws, axis=0).reshape(-1, 3)
        )
    ).reshape(draws, 300)
    totals = (buys * spend).sum(axis=1)
    first, _ = distribution.grid_moments(found.log_quantiles)
    assert totals.mean() == pytest.approx((found.prob * first).sum(), rel=0.02)
    assert totals.std() == pytest.approx(total_sd, rel=0.05)


def test_spend_given_a_purchase_reads_off_the_grid_of_quantile_boosters() -> None:
    # BTYD's log-normal in the grid's terms is that very log-normal, at any level.
    mean, variance = np.array([50.0, 120.0]), np.array([900.0, 4e4])
    grid = distribution.log_normal_log_quantiles(mean, variance)
    levels = (0.02, 0.3, 0.5, 0.75, 0.99)
    np.testing.assert_allclose(
        distribution.grid_quantiles(np.array([0.6, 0.9]), grid, levels),
        distribution.quantiles(np.array([0.6, 0.9]), mean, variance, levels),
        rtol=1e-9,
    )
    first, second = distribution.grid_moments(grid)
    np.testing.assert_allclose(first, mean, rtol=1e-9)
    np.testing.assert_allclose(second - first**2, variance, rtol=1e-9)
    # Boosters whose levels cross are sorted: the quantiles never cross, and the
    # distribution function is their inverse, the atom at 0 included.
    crossed = np.log(np.array([[30.0, 20.0, 90.0], [5.0, 6.0, 400.0]]))
    prob = np.array([0.4, 0.7])
    quantiles = distribution.grid_quantiles(prob, crossed, levels)
    assert (np.diff(quantiles, axis=1) >= 0).all()
    assert quantiles[0, 0] == 0 and quantiles[0, -1] > 0
    below, at_or_below = distribution.grid_cdf(quantiles[:, -1], prob, crossed)
    np.testing.assert_allclose(at_or_below, 0.99, rtol=1e-9)
    np.testing.assert_allclose(below, at_or_below)
    _, at_zero = distribution.grid_cdf(np.zeros(2), prob, crossed)
    np.testing.assert_allclose(at_zero, 1 - prob)


def test_too_few_buyers_leave_spend_given_a_purchase_to_btyd() -> None:
    examples = training_examples()
    buyers = buyers_trained_on()
    config = TrainingConfig(
        num_threads=1, num_boost_round=30, min_data_in_leaf=5, num_leaves=7,
        min_spend_buyers=buyers + 1,
    )  # fmt: skip
    result = train(examples, config)
    assert [booster.target for booster in result.boosters] == ["prob_purchase", "expected_spend"]
    assert result.spend_model == (
        f"BTYD's: {buyers:,} buyers in the training windows, fewer than the {buyers + 1:,}"
        " the quantile boosters need"
    )
    registry, fits = register(result, "m1")
    assert set(registry["spend_model"]) == {result.spend_model}
    model = ScoringModel.from_registry(registry, fits)
    assert model.spend_given_purchase == []
    # The quantiles are BTYD's log-normal spend given a purchase, read at the levels.
    features = scoring_features()
    scored = score_frame(model, features, dt.datetime(2025, 7, 1))
    base, _ = booster_inputs(model, features)
    _, variance = spend_given_purchase(model.btyd, features, np.full(len(features), 90.0))
    levels = tuple(read for _, read in model.quantiles)
    np.testing.assert_allclose(
        scored[model.quantile_columns].to_numpy(),
        distribution.quantiles(scored["prob_purchase"], buyer_spend_base(base), variance, levels),
        rtol=1e-9,
    )
