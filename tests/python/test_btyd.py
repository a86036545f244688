"""Tests for the BG/NBD + Gamma-Gamma baseline (clv.btyd).

The simulators here follow the models' story directly (not their likelihoods), so
parameter recovery and hold-out checks test the maths end to end.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import integrate, optimize, special

from clv import btyd
from clv.btyd import (
    POPULATION_MEAN_BOUND,
    BgNbdParams,
    BtydModel,
    GammaGammaParams,
    bgnbd_expected_purchases,
    bgnbd_log_likelihood,
    bgnbd_prob_alive,
    bgnbd_prob_purchase,
    fit_bgnbd,
    fit_btyd,
    fit_gamma_gamma,
    gamma_gamma_expected_order_value,
    gamma_gamma_log_likelihood,
)

TRUE_BG = BgNbdParams(r=0.5, alpha=20.0, a=0.8, b=2.5)
TRUE_GG = GammaGammaParams(p=6.0, q=4.0, v=15.0)
HOLDOUT_DAYS = 180.0


# --------------------------------------------------------------------------------------
# Simulators
# --------------------------------------------------------------------------------------


def simulate_bgnbd(
    params: BgNbdParams, T: np.ndarray, holdout_days: float, rng: np.random.Generator
) -> SimpleNamespace:
    """BG/NBD customers observed over (0, T] and a hold-out (T, T + holdout_days].

    lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b); repeat purchases arrive as a Poisson
    process and the customer drops out right after the J-th repeat, J ~ Geometric(p).
    Arrivals are drawn as a Poisson count over the whole window with uniform, sorted
    times, which is the same process and vectorises over customers.
    """
    n = T.size
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    last_repeat = rng.geometric(p)  # index of the repeat purchase after which they leave
    end = T + holdout_days
    n_events = rng.poisson(lam * end)
    cust = np.repeat(np.arange(n), n_events)
    times = rng.uniform(0.0, 1.0, cust.size) * end[cust]
    order = np.lexsort((times, cust))
    times = times[order]
    starts = np.cumsum(n_events) - n_events
    rank = np.arange(cust.size) - starts[cust] + 1
    happened = rank <= last_repeat[cust]
    in_calibration = happened & (times <= T[cust])
    x = np.bincount(cust[in_calibration], minlength=n).astype(float)
    tx = np.zeros(n)
    np.maximum.at(tx, cust[in_calibration], times[in_calibration])
    holdout = np.bincount(cust[happened & (times > T[cust])], minlength=n)
    return SimpleNamespace(x=x, tx=tx, T=T, holdout=holdout, alive=last_repeat > x)


def simulate_gamma_gamma(
    params: GammaGammaParams, x: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Mean of x order values, each Gamma(p, rate nu), nu ~ Gamma(q, rate v); NaN at x=0."""
    nu = rng.gamma(params.q, 1.0 / params.v, x.size)
    safe_x = np.maximum(x, 1.0)
    # The mean of x iid Gamma(p, nu) values is Gamma(p x, x nu).
    mean = rng.gamma(params.p * safe_x, 1.0 / (safe_x * nu))
    return np.where(x > 0, mean, np.nan)


@pytest.fixture(scope="module")
def customers() -> SimpleNamespace:
    rng = np.random.default_rng(20240501)
    T = rng.uniform(180.0, 540.0, 20_000)
    return simulate_bgnbd(TRUE_BG, T, HOLDOUT_DAYS, rng)


@pytest.fixture(scope="module")
def fitted(customers: SimpleNamespace) -> BgNbdParams:
    return fit_bgnbd(customers.x, customers.tx, customers.T)


# --------------------------------------------------------------------------------------
# Independent reference implementations
# --------------------------------------------------------------------------------------


def eq6_likelihood(params: BgNbdParams, x: int, tx: float, T: float) -> float:
    """Eq. 6 written out literally with gamma functions (no logs, no rewriting)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b

    def beta(u: float, w: float) -> float:
        return math.gamma(u) * math.gamma(w) / math.gamma(u + w)

    a1 = math.gamma(r + x) * alpha**r / math.gamma(r)
    a2 = beta(a, b + x) / beta(a, b)
    a3 = (1.0 / (alpha + T)) ** (r + x)
    a4 = (a / (b + x - 1.0)) * (1.0 / (alpha + tx)) ** (r + x) if x > 0 else 0.0
    return a1 * a2 * (a3 + a4)


def posterior_expected_purchases(params: BgNbdParams, x: int, tx: float, T: float, t: float):
    """E[Y(t) | x, t_x, T] by integrating the individual-level mean over the posterior.

    Given alive at T: lambda ~ Gamma(r+x, alpha+T), p ~ Beta(a, b+x), and
    E[Y(t) | lambda, p] = (1 - exp(-lambda p t)) / p; P(alive) from the mixture weights.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    k = t / (alpha + T)

    def integrand(p: float) -> float:
        return (r + x) * k if p == 0.0 else -math.expm1(-(r + x) * math.log1p(p * k)) / p

    log_norm = special.betaln(a, b + x)
    if min(a, b + x) < 2.0:
        # QUADPACK's algebraic weight handles the non-smooth end points of the density.
        value, _ = integrate.quad(
            integrand, 0.0, 1.0, weight="alg", wvar=(a - 1.0, b + x - 1.0), epsabs=0.0, epsrel=1e-11
        )
        given_alive = value / math.exp(log_norm)
    else:
        # A smooth but possibly very concentrated posterior: break at its quantiles.
        def weighted(p: float) -> float:
            if not 0.0 < p < 1.0:
                return 0.0  # single points carry no mass
            log_pdf = (a - 1.0) * math.log(p) + (b + x - 1.0) * math.log1p(-p) - log_norm
            return integrand(p) * math.exp(log_pdf)

        cuts = special.betaincinv(a, b + x, [1e-14, 0.01, 0.2, 0.5, 0.8, 0.99, 1 - 1e-14])
        edges = np.unique(np.concatenate([[0.0], cuts, [1.0]]))
        given_alive = sum(
            integrate.quad(weighted, lo, hi, epsabs=0.0, epsrel=1e-11)[0]
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        )
    if x == 0:
        return given_alive
    odds_dead = a / (b + x - 1.0) * ((alpha + T) / (alpha + tx)) ** (r + x)
    return given_alive / (1.0 + odds_dead)


# --------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------


def test_bgnbd_recovers_simulated_parameters(fitted: BgNbdParams) -> None:
    for name in ("r", "alpha", "a", "b"):
        truth, estimate = getattr(TRUE_BG, name), getattr(fitted, name)
        assert estimate == pytest.approx(truth, rel=0.25), name


def test_bgnbd_predicts_holdout_total(customers: SimpleNamespace, fitted: BgNbdParams) -> None:
    predicted = bgnbd_expected_purchases(
        fitted, customers.x, customers.tx, customers.T, HOLDOUT_DAYS
    )
    assert predicted.sum() == pytest.approx(customers.holdout.sum(), rel=0.05)


def test_bgnbd_holdout_by_frequency_group(customers: SimpleNamespace) -> None:
    # Totals can hide offsetting errors; the conditional expectation must also hold per
    # group of customers with similar history.
    predicted = bgnbd_expected_purchases(
        TRUE_BG, customers.x, customers.tx, customers.T, HOLDOUT_DAYS
    )
    for lo, hi in ((0, 1), (1, 3), (3, 8), (8, 10_000)):
        group = (customers.x >= lo) & (customers.x < hi)
        assert group.sum() > 500
        assert predicted[group].sum() == pytest.approx(customers.holdout[group].sum(), rel=0.08)


def test_prob_purchase_and_prob_alive_match_simulation(customers: SimpleNamespace) -> None:
    args = (TRUE_BG, customers.x, customers.tx, customers.T)
    buyers = (customers.holdout > 0).sum()
    assert bgnbd_prob_purchase(*args, HOLDOUT_DAYS).sum() == pytest.approx(buyers, rel=0.04)
    assert bgnbd_prob_alive(*args).sum() == pytest.approx(customers.alive.sum(), rel=0.03)
    repeaters = customers.x > 0
    alive_pred = bgnbd_prob_alive(*args)[repeaters].sum()
    assert alive_pred == pytest.approx(customers.alive[repeaters].sum(), rel=0.04)


def test_log_likelihood_matches_eq6_written_out() -> None:
    params = BgNbdParams(r=0.7, alpha=12.0, a=0.6, b=3.1)
    cases = [(0, 0.0, 40.0), (1, 5.0, 40.0), (2, 30.0, 31.0), (5, 100.0, 300.0), (9, 2.0, 90.0)]
    x, tx, T = (np.array(col, dtype=float) for col in zip(*cases, strict=True))
    ours = bgnbd_log_likelihood(params, x, tx, T)
    direct = [math.log(eq6_likelihood(params, *case)) for case in cases]
    np.testing.assert_allclose(ours, direct, rtol=1e-10)


def test_bgnbd_gradient_matches_finite_differences(customers: SimpleNamespace) -> None:
    x, tx, T = customers.x[:2000], customers.tx[:2000] / 300, customers.T[:2000] / 300
    objective = btyd._bgnbd_objective(x, tx, T, np.arange(2000) % 3 + 1.0, penalizer_coef=0.1)
    theta = np.log([0.7, 0.1, 1.3, 2.0])
    numeric = optimize.approx_fprime(theta, lambda th: objective(th)[0], 1e-7)
    np.testing.assert_allclose(objective(theta)[1], numeric, rtol=1e-4, atol=1e-7)
    # The rearranged objective is the weighted mean of the per-customer log-likelihood.
    r, alpha, a, b = np.exp(theta)
    per_customer = bgnbd_log_likelihood(BgNbdParams(r, alpha, a, b), x, tx, T)
    w = np.arange(2000) % 3 + 1.0
    penalty = 0.1 * (r**2 + a**2 + b**2)
    assert objective(theta)[0] == pytest.approx(-(w @ per_customer) / w.sum() + penalty)


@pytest.mark.parametrize(
    "params",
    [
        BgNbdParams(r=0.5, alpha=20.0, a=0.8, b=2.5),
        BgNbdParams(r=2.0, alpha=5.0, a=3.0, b=10.0),
        BgNbdParams(r=0.2, alpha=50.0, a=1.0, b=0.5),  # a == 1: eq. 10 is 0/0
        BgNbdParams(r=1.0, alpha=1.0, a=0.1, b=0.1),
    ],
)
def test_expected_purchases_match_posterior_integral(params: BgNbdParams) -> None:
    cases = [(0, 0.0, 10.0, 30.0), (1, 20.0, 200.0, 365.0), (4, 150.0, 160.0, 90.0)]
    cases += [(40, 700.0, 730.0, 365.0), (3, 10.0, 700.0, 3650.0), (250, 720.0, 730.0, 730.0)]
    x, tx, T, t = (np.array(col, dtype=float) for col in zip(*cases, strict=True))
    ours = bgnbd_expected_purchases(params, x, tx, T, t)
    reference = [posterior_expected_purchases(params, *case) for case in cases]
    np.testing.assert_allclose(ours, reference, rtol=1e-6)


def test_expected_purchases_survive_hypergeometric_breakdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With large a and x and z near 1, scipy's 2F1 returns NaN; the quadrature fallback
    # must take over. For t -> infinity, E[Y | alive] tends to E[1/p] = (a+b+x-1)/(a-1).
    params = BgNbdParams(r=1.0, alpha=0.5, a=20.0, b=0.1)
    x, tx, T = np.array([300.0, 2000.0]), np.array([5.0, 5.0]), np.array([5.0, 5.0])
    huge = np.array([1e7, 1e7])
    calls: list[int] = []
    quadrature = btyd._expected_given_alive_quadrature

    def spy(*args: object) -> np.ndarray:
        calls.append(1)
        return quadrature(*args)

    monkeypatch.setattr(btyd, "_expected_given_alive_quadrature", spy)
    got = bgnbd_expected_purchases(params, x, tx, T, huge)
    limit = (params.a + params.b + x - 1.0) / (params.a - 1.0)
    np.testing.assert_allclose(got, limit * bgnbd_prob_alive(params, x, tx, T), rtol=1e-4)
    with np.errstate(all="ignore"):
        raw = btyd._expected_given_alive_hyp2f1(1.0, 0.5, 20.0, 0.1, x, T, huge)
    if not np.isfinite(raw).all():  # as in scipy 1.17; a future scipy may do better
        assert calls
    # And at an ordinary horizon the fallback agrees with the exact posterior integral.
    one, t = np.array([1.0, 1.0]), np.array([365.0, 365.0])
    got = bgnbd_expected_purchases(params, x, one, one, t)
    reference = [posterior_expected_purchases(params, int(xi), 1.0, 1.0, 365.0) for xi in x]
    np.testing.assert_allclose(got, reference, rtol=1e-6)


def test_quadrature_fallback_agrees_with_hypergeometric_form() -> None:
    x = np.array([0.0, 1.0, 5.0, 50.0])
    T, t = np.full(4, 200.0), np.full(4, 365.0)
    for r, alpha, a, b in ((0.5, 20.0, 0.8, 2.5), (3.0, 10.0, 4.0, 1.5)):
        closed = btyd._expected_given_alive_hyp2f1(r, alpha, a, b, x, T, t)
        quad = btyd._expected_given_alive_quadrature(r, alpha, a, b, x, T, t)
        np.testing.assert_allclose(quad, closed, rtol=1e-7)


def test_prob_purchase_is_bounded_by_alive_and_grows_with_horizon() -> None:
    x, tx, T = np.array([0.0, 2.0, 10.0]), np.array([0.0, 30.0, 100.0]), np.full(3, 365.0)
    alive = bgnbd_prob_alive(TRUE_BG, x, tx, T)
    short = bgnbd_prob_purchase(TRUE_BG, x, tx, T, 30.0)
    long = bgnbd_prob_purchase(TRUE_BG, x, tx, T, 3650.0)
    assert np.all(short < long) and np.all(long <= alive) and np.all(short > 0)
    assert np.all(bgnbd_expected_purchases(TRUE_BG, x, tx, T, 0.0) == 0.0)


def test_expected_purchases_increase_with_frequency_for_recent_buyers() -> None:
    # Only with t_x near T: many purchases followed by a long silence mean "probably
    # gone", so at t_x << T the expectation can fall with x (the BG/NBD "dead" effect).
    x = np.arange(0.0, 40.0)
    tx = np.where(x > 0, 360.0, 0.0)
    got = bgnbd_expected_purchases(TRUE_BG, x, tx, np.full(x.size, 365.0), 90.0)
    assert np.all(np.diff(got) > 0)


def test_prob_alive_decreases_with_silence() -> None:
    T = np.arange(50.0, 1000.0, 10.0)
    for x in (1.0, 5.0):
        alive = bgnbd_prob_alive(TRUE_BG, np.full(T.size, x), np.full(T.size, 40.0), T)
        assert np.all(np.diff(alive) < 0)
    first_only = bgnbd_prob_alive(TRUE_BG, np.zeros(T.size), np.zeros(T.size), T)
    assert np.all(first_only == 1.0)  # BG/NBD: no dropout before the first repeat


def test_weighted_fit_on_unique_rows_equals_expanded_fit() -> None:
    rng = np.random.default_rng(7)
    sim = simulate_bgnbd(TRUE_BG, rng.integers(100, 200, 4000).astype(float), 0.0, rng)
    # Whole days make many customers share (x, t_x, T), as they do in the warehouse.
    x, T = sim.x, sim.T
    tx = np.where(x > 0, np.clip(np.ceil(sim.tx), 1.0, T), 0.0)
    m = simulate_gamma_gamma(TRUE_GG, x, rng)
    m = np.where(x > 0, np.round(m, 0), np.nan)  # coarse prices: GG rows repeat too
    rows = np.column_stack([x, tx, T, np.nan_to_num(m, nan=-1.0)])
    unique, counts = np.unique(rows, axis=0, return_counts=True)
    assert unique.shape[0] < 0.8 * x.size
    um = np.where(unique[:, 3] < 0, np.nan, unique[:, 3])

    expanded = fit_btyd(x, tx, T, m)
    weighted = fit_btyd(unique[:, 0], unique[:, 1], unique[:, 2], um, weights=counts)
    for got, want in (
        (weighted.bgnbd, expanded.bgnbd),
        (weighted.gamma_gamma, expanded.gamma_gamma),
    ):
        for name, value in vars(want).items():
            assert getattr(got, name) == pytest.approx(value, rel=1e-5), name


@pytest.mark.parametrize("unit_weights", [True, False])
def test_compression_preserves_the_objective(unit_weights: bool) -> None:
    x = np.array([0, 0, 1, 1, 1, 3, 3, 0, 12], dtype=float)
    tx = np.array([0, 0, 5, 5, 7, 9, 9, 0, 12], dtype=float)
    T = np.array([10, 10, 10, 10, 10, 12, 12, 11, 12], dtype=float)
    w = np.ones(x.size) if unit_weights else np.array([1, 2, 1, 1, 3, 1, 1, 1, 2.0])
    cx, ctx, cT, cw = btyd._compress(x, tx, T, w)
    got = sorted(zip(cx, ctx, cT, cw, strict=True))
    want: dict[tuple[float, float, float], float] = {}
    for row in zip(x, tx, T, w, strict=True):
        want[row[:3]] = want.get(row[:3], 0.0) + row[3]
    assert got == sorted((*k, v) for k, v in want.items())
    theta = np.log([0.6, 3.0, 0.9, 1.7])
    raw = btyd._bgnbd_objective(x, tx, T, w, 0.0)(theta)
    grouped = btyd._bgnbd_objective(cx, ctx, cT, cw, 0.0)(theta)
    assert grouped[0] == pytest.approx(raw[0], rel=1e-12)
    np.testing.assert_allclose(grouped[1], raw[1], rtol=1e-12)
    # Fractional days cannot use the integer key and take the general path.
    fx, ftx, fT, fw = btyd._compress(x, tx + 0.5 * (x > 0), T + 0.5, w)
    assert fx.size == len(want) and fw.sum() == w.sum()


def test_penalizer_shrinks_parameters(customers: SimpleNamespace, fitted: BgNbdParams) -> None:
    shrunk = fit_bgnbd(customers.x, customers.tx, customers.T, penalizer_coef=0.05)
    assert shrunk.b < fitted.b and shrunk.r < fitted.r


def test_non_finite_optimum_raises_runtime_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> SimpleNamespace:
        return SimpleNamespace(fun=np.nan, x=np.full(4, np.nan), message="boom", success=False)

    monkeypatch.setattr(btyd.optimize, "minimize", broken)
    with pytest.raises(RuntimeError, match="BG/NBD fit did not converge"):
        fit_bgnbd([1, 0], [3, 0], [10, 10])


# --------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spend() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(99)
    x = rng.poisson(3.0, 30_000).astype(float)
    return x, simulate_gamma_gamma(TRUE_GG, x, rng)


def test_gamma_gamma_recovers_simulated_parameters(spend: tuple[np.ndarray, np.ndarray]) -> None:
    fitted = fit_gamma_gamma(*spend)
    for name in ("p", "q", "v"):
        assert getattr(fitted, name) == pytest.approx(getattr(TRUE_GG, name), rel=0.25), name
    x, m = spend
    # The population mean is better determined than p, q, v separately.
    assert fitted.population_mean == pytest.approx(TRUE_GG.population_mean, rel=0.05)
    assert np.nanmean(m) == pytest.approx(TRUE_GG.population_mean, rel=0.05)


def test_gamma_gamma_gradient_matches_finite_differences(
    spend: tuple[np.ndarray, np.ndarray],
) -> None:
    x, m = spend
    use = x > 0
    w = np.arange(use.sum()) % 4 + 1.0
    objective = btyd._gg_objective(x[use], m[use] / 30.0, w, penalizer_coef=0.01)
    theta = np.log([4.0, 2.0, 0.6])
    numeric = optimize.approx_fprime(theta, lambda th: objective(th)[0], 1e-7)
    np.testing.assert_allclose(objective(theta)[1], numeric, rtol=1e-4, atol=1e-7)
    # The aggregated objective is the weighted mean of the per-customer log-likelihood.
    p, q_minus_1, v = np.exp(theta)
    params = GammaGammaParams(p=p, q=1.0 + q_minus_1, v=v)
    per_customer = gamma_gamma_log_likelihood(params, x[use], m[use] / 30.0)
    penalty = 0.01 * (p**2 + (1.0 + q_minus_1) ** 2)
    assert objective(theta)[0] == pytest.approx(-(w @ per_customer) / w.sum() + penalty)


def test_gamma_gamma_log_likelihood_is_a_density() -> None:
    # Integrating the density of m_x over (0, inf) must give 1 for any x.
    params = GammaGammaParams(p=2.5, q=3.0, v=20.0)
    for x in (1.0, 4.0):

        def density(m: float, x: float = x) -> float:
            return math.exp(gamma_gamma_log_likelihood(params, [x], [m])[0])

        total, _ = integrate.quad(density, 0.0, np.inf)
        assert total == pytest.approx(1.0, rel=1e-6)


def test_gamma_gamma_conditional_mean_is_the_posterior_mean() -> None:
    # E(M | m_x, x) = E[p / nu | m_x, x]; the posterior of nu is proportional to
    # Gamma(q, v) prior times the Gamma(px, x nu) density of m_x. Integrate it directly.
    params = GammaGammaParams(p=2.5, q=3.5, v=40.0)
    p, q, v = params.p, params.q, params.v
    for x, m in ((1.0, 10.0), (3.0, 35.0), (12.0, 4.0)):

        def log_post(nu: float, x: float = x, m: float = m) -> float:
            prior = (q - 1.0) * math.log(nu) - v * nu
            return prior + p * x * math.log(x * nu) - x * nu * m

        mode = (p * x + q - 1.0) / (v + x * m)
        shift = log_post(mode)

        def post(nu: float, f=log_post, c=shift) -> float:
            return math.exp(f(nu) - c)

        norm = integrate.quad(post, 0.0, np.inf)[0]
        mean = integrate.quad(lambda nu, g=post: p / nu * g(nu), 0.0, np.inf)[0] / norm
        got = gamma_gamma_expected_order_value(params, [x], [m])[0]
        assert got == pytest.approx(mean, rel=1e-6)


def test_gamma_gamma_shrinks_toward_population_mean() -> None:
    params = GammaGammaParams(p=6.0, q=4.0, v=15.0)
    pop = params.population_mean
    x = np.array([1.0, 2.0, 5.0, 20.0, 200.0])
    high = gamma_gamma_expected_order_value(params, x, np.full(x.size, 3 * pop))
    assert np.all((high > pop) & (high < 3 * pop))
    assert np.all(np.diff(high) > 0)  # more orders, more trust in the customer's own mean
    assert high[-1] == pytest.approx(3 * pop, rel=0.01)
    low = gamma_gamma_expected_order_value(params, x, np.full(x.size, pop / 3))
    assert np.all((low < pop) & (low > pop / 3)) and np.all(np.diff(low) < 0)


def test_gamma_gamma_falls_back_to_population_mean() -> None:
    params = GammaGammaParams(p=6.0, q=4.0, v=15.0)
    got = gamma_gamma_expected_order_value(params, [0, 0, 3, 2], [np.nan, 50.0, 0.0, -4.0])
    np.testing.assert_allclose(got, params.population_mean)


@pytest.mark.parametrize(
    ("wholesale_share", "spread"),
    [
        # A quarter wholesale: q at its bound, p v / (q - 1) 6e5 times the fitted
        # customers' mean (1.5e8 on generated customers, and every forecast was 0).
        (0.25, 0.6),
        # A tenth, more spread: q at 1.03, 6.9 times the mean, below the largest order
        # value (the bound before); on generated exports like it BTYD's total was +134%.
        (0.1, 1.0),
    ],
)
def test_a_mix_of_retail_and_wholesale_orders_gets_the_fitted_customers_mean(
    wholesale_share: float, spread: float
) -> None:
    # Wholesale orders about 650, retail about 45: no one gamma mixes them, and
    # p v / (q - 1) is what a one-purchase customer is forecast.
    rng = np.random.default_rng(3)
    wholesale = rng.random(2500) < wholesale_share
    level = np.where(wholesale, 650.0, 45.0) * np.exp(rng.normal(0.0, spread, 2500))
    x = rng.integers(1, 4, 2500)
    m = level * np.exp(rng.normal(0.0, 0.3, 2500) / np.sqrt(x))
    params = fit_gamma_gamma(x, m)
    assert params.population_mean == pytest.approx(m.mean(), rel=1e-9)
    # Where the mixing gamma fits (retail alone, however spread), the fit is left as it is.
    retail = fit_gamma_gamma(x[~wholesale], m[~wholesale])
    assert retail.population_mean <= POPULATION_MEAN_BOUND * m[~wholesale].mean()
    assert retail.population_mean != pytest.approx(m[~wholesale].mean(), rel=1e-6)


# --------------------------------------------------------------------------------------
# BtydModel, validation, serialisation
# --------------------------------------------------------------------------------------


def test_btyd_model_spend_is_purchases_times_order_value(customers: SimpleNamespace) -> None:
    rng = np.random.default_rng(3)
    m = simulate_gamma_gamma(TRUE_GG, customers.x, rng)
    model = fit_btyd(customers.x, customers.tx, customers.T, m)
    args = (customers.x, customers.tx, customers.T)
    spend = model.expected_spend(*args, m, HOLDOUT_DAYS)
    purchases = model.expected_purchases(*args, HOLDOUT_DAYS)
    np.testing.assert_allclose(spend, purchases * model.expected_order_value(customers.x, m))
    assert model.gamma_gamma.population_mean == pytest.approx(TRUE_GG.population_mean, rel=0.1)
    np.testing.assert_array_equal(model.prob_alive(*args), bgnbd_prob_alive(model.bgnbd, *args))
    np.testing.assert_array_equal(
        model.prob_purchase(*args, 30.0), bgnbd_prob_purchase(model.bgnbd, *args, 30.0)
    )


def test_to_dict_from_dict_round_trip() -> None:
    model = BtydModel(bgnbd=TRUE_BG, gamma_gamma=TRUE_GG)
    text = json.dumps(model.to_dict())
    restored = BtydModel.from_dict(json.loads(text))
    assert restored == model
    assert json.loads(text)["time_unit"] == "days"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(time_unit="weeks"), "time_unit"),
        (lambda d: d["bgnbd"].pop("alpha"), "missing or malformed"),
        (lambda d: d["gamma_gamma"].update(q=0.5), "q must be > 1"),
        (lambda d: d["bgnbd"].update(r=-1.0), "r must be a positive"),
    ],
)
def test_from_dict_rejects_bad_parameters(mutate, message: str) -> None:
    data = BtydModel(bgnbd=TRUE_BG, gamma_gamma=TRUE_GG).to_dict()
    mutate(data)
    with pytest.raises(ValueError, match=message):
        BtydModel.from_dict(data)


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "message"),
    [
        ([], [], [], "empty input"),
        ([1, 2], [3], [5, 6], "mismatched lengths"),
        ([1, -1], [3, 0], [5, 5], "frequency contains negative"),
        ([1, 0], [-3, 0], [5, 5], "recency contains negative"),
        ([0], [0], [-1], "T contains negative"),
        ([1], [6], [5], "recency must not exceed T"),
        ([2], [0], [5], "recency is 0 for a customer with frequency > 0"),
        ([0], [2], [5], "recency is > 0 for a customer with frequency 0"),
        ([1.5], [2], [5], "whole numbers"),
        ([np.nan], [2], [5], "NaN"),
        ([[1, 2]], [[1, 2]], [[3, 3]], "one-dimensional"),
    ],
)
def test_invalid_summaries_raise(frequency, recency, T, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_bgnbd(frequency, recency, T)
    with pytest.raises(ValueError, match=message):
        bgnbd_prob_alive(TRUE_BG, frequency, recency, T)


def test_other_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match="no repeat purchases"):
        fit_bgnbd([0, 0], [0, 0], [5, 9])
    with pytest.raises(ValueError, match="weights contains negative"):
        fit_bgnbd([1, 0], [3, 0], [5, 9], weights=[1, -1])
    with pytest.raises(ValueError, match="mismatched lengths: weights"):
        fit_bgnbd([1, 0], [3, 0], [5, 9], weights=[1])
    with pytest.raises(ValueError, match="horizon_days"):
        bgnbd_expected_purchases(TRUE_BG, [1], [3], [5], -1.0)
    with pytest.raises(ValueError, match="monetary_value contains NaN"):
        fit_btyd([1, 0], [3, 0], [5, 9], [np.nan, np.nan])
    with pytest.raises(ValueError, match="mismatched lengths: monetary_value"):
        fit_btyd([1, 0], [3, 0], [5, 9], [1.0])
    with pytest.raises(ValueError, match="at least one customer with frequency >= 1"):
        fit_gamma_gamma([1, 0], [-5.0, np.nan])


def simulated_spend(model: BtydModel, x, tx, T, m, t, draws, rng) -> np.ndarray:
    """Spend in (T, T + t] drawn the way BG/NBD and Gamma-Gamma tell it, from the posterior."""
    bg, gg = model.bgnbd, model.gamma_gamma
    alive = rng.random(draws) < model.prob_alive([x], [tx], [T])[0]
    rate = rng.gamma(bg.r + x, 1 / (bg.alpha + T), draws)
    dropout = rng.beta(bg.a, bg.b + x, draws)
    nu = (
        rng.gamma(gg.q + gg.p * x, 1 / (gg.v + x * m), draws)
        if x
        else rng.gamma(gg.q, 1 / gg.v, draws)
    )
    counts = np.zeros(draws, dtype=int)
    clock = np.zeros(draws)
    active = alive.copy()
    while active.any():
        clock[active] += rng.exponential(1 / rate[active])
        bought = active & (clock <= t)
        counts[bought] += 1
        active = bought & (rng.random(draws) >= dropout)
    return np.where(counts > 0, rng.gamma(gg.p * np.maximum(counts, 1), 1 / nu), 0.0)


def test_spend_quantiles_and_moments_match_a_simulation_of_the_model() -> None:
    model = BtydModel(
        BgNbdParams(r=0.8, alpha=40.0, a=0.7, b=2.5), GammaGammaParams(p=5.0, q=3.0, v=60.0)
    )
    rng = np.random.default_rng(7)
    levels = (0.1, 0.5, 0.9, 0.97)
    for x, tx, T, m in ((0.0, 0.0, 50.0, np.nan), (5.0, 200.0, 300.0, 25.0)):
        spend = simulated_spend(model, x, tx, T, m, 273.0, 200_000, rng)
        exact = model.spend_quantiles([x], [tx], [T], [m], [273.0], levels)[0]
        np.testing.assert_allclose(exact, np.quantile(spend, levels), rtol=0.02)
        mean, variance = model.spend_given_purchase([x], [tx], [T], [m], [273.0])
        buyers = spend[spend > 0]
        assert mean[0] == pytest.approx(buyers.mean(), rel=0.02)
        assert variance[0] == pytest.approx(buyers.var(), rel=0.1)
        # Its mean given a purchase times P(purchase) is the expected spend.
        prob = model.prob_purchase([x], [tx], [T], [273.0])[0]
        expected = model.expected_spend([x], [tx], [T], [m], [273.0])[0]
        assert mean[0] * prob == pytest.approx(expected, rel=1e-3)  # tail cut at 1e-5
