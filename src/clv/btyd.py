"""Buy-till-you-die baseline: BG/NBD for purchase counts, Gamma-Gamma for order value.

The baseline is both a benchmark and the base margin of the LightGBM booster, so it has to
fit millions of customers in seconds and be reproducible from a few stored numbers.

References
----------
[BG/NBD] Fader, Hardie & Lee (2005), "Counting your customers the easy way: an
    alternative to the Pareto/NBD model", Marketing Science 24(2). Equation numbers below
    refer to this paper.
[GG] Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer base
    analysis", JMR 42(4), and Fader & Hardie (2013), "The Gamma-Gamma model of monetary
    value" (note).

Inputs, per customer, all in **days**:

* ``frequency`` x: number of *repeat* purchase days (distinct purchase days minus 1).
* ``recency`` t_x: days between the first and the last purchase day (0 when x == 0).
* ``T``: days between the first purchase day and the cutoff.
* ``monetary_value`` m_x: mean value of the *repeat* purchases (the lifetimes convention,
  which keeps the often atypical first order out of the spend model). It is only read
  where x >= 1; for x == 0 it may be anything, including NaN. A non-positive mean carries
  no usable information and is replaced by the population mean, as for x == 0.

Time is rescaled inside the fits only to condition the optimiser; every parameter that
leaves this module is in days (alpha) or in the caller's currency (v).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from clv import distribution

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]

# Log-parameter box for L-BFGS-B: wide enough for any sensible customer base, narrow
# enough that exp() never overflows and a degenerate direction (e.g. no dropout, a, b ->
# infinity) stops at a finite value instead of wandering off.
_LOG_BOUND = 15.0
# Around a == 1 eq. 10 is 0/0 (a removable singularity); closer than this we interpolate
# between the two sides instead of dividing two rounding errors.
_A_NEAR_ONE = 1e-4


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------


def _check_positive_finite(owner: str, values: Mapping[str, float]) -> None:
    for name, value in values.items():
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{owner}: {name} must be a positive finite number, got {value!r}")


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD parameters: lambda ~ Gamma(r, alpha) (rate alpha, in days), p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    def __post_init__(self) -> None:
        _check_positive_finite("BgNbdParams", asdict(self))


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma parameters: order value ~ Gamma(p, nu), nu ~ Gamma(q, v) (rates)."""

    p: float
    q: float
    v: float

    def __post_init__(self) -> None:
        _check_positive_finite("GammaGammaParams", asdict(self))
        if self.q <= 1:
            # The fit constrains q > 1; below it the population mean order value is infinite.
            raise ValueError(
                f"GammaGammaParams: q must be > 1 so the population mean p*v/(q-1) is finite, "
                f"got {self.q!r}"
            )

    @property
    def population_mean(self) -> float:
        """E(M) = E[p / nu] = p v / (q - 1), the mean order value of a random customer."""
        return self.p * self.v / (self.q - 1)


# --------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------


def _as_1d_float(name: str, values: ArrayLike) -> FloatArray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _check_non_negative(name: str, arr: FloatArray) -> None:
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if (arr < 0).any():
        raise ValueError(f"{name} contains negative values")


def _validate_frequency(frequency: ArrayLike) -> FloatArray:
    x = _as_1d_float("frequency", frequency)
    if x.size == 0:
        raise ValueError("empty input: at least one customer is needed")
    _check_non_negative("frequency", x)
    if (x != np.floor(x)).any():
        raise ValueError("frequency must be whole numbers (count of repeat purchase days)")
    return x


def _validate_summaries(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    x = _validate_frequency(frequency)
    tx = _as_1d_float("recency", recency)
    t_obs = _as_1d_float("T", T)
    if not x.size == tx.size == t_obs.size:
        raise ValueError(
            f"mismatched lengths: frequency={x.size}, recency={tx.size}, T={t_obs.size}"
        )
    _check_non_negative("recency", tx)
    _check_non_negative("T", t_obs)
    if (tx > t_obs).any():
        raise ValueError("recency must not exceed T (last purchase after the cutoff?)")
    if ((x > 0) & (tx == 0)).any():
        raise ValueError(
            "recency is 0 for a customer with frequency > 0: repeat purchases are on "
            "distinct days, so recency must be > 0"
        )
    if ((x == 0) & (tx > 0)).any():
        # A common upstream mix-up: recency as days *since* the last purchase.
        raise ValueError(
            "recency is > 0 for a customer with frequency 0: recency is the time from the "
            "first to the last purchase, so it must be 0 without repeat purchases"
        )
    return x, tx, t_obs


def _validate_weights(weights: ArrayLike | None, n: int) -> FloatArray:
    if weights is None:
        return np.ones(n)
    w = _as_1d_float("weights", weights)
    if w.size != n:
        raise ValueError(f"mismatched lengths: weights={w.size}, customers={n}")
    if not np.isfinite(w).all():
        raise ValueError("weights contains NaN or infinite values")
    if (w < 0).any():
        raise ValueError("weights contains negative values")
    if w.sum() <= 0:
        raise ValueError("weights must not all be zero")
    return w


def _validate_horizon(horizon_days: ArrayLike, n: int) -> FloatArray:
    t = _as_1d_float("horizon_days", horizon_days)
    if t.size not in (1, n):
        raise ValueError(f"horizon_days must be a scalar or have length {n}, got {t.size}")
    if not np.isfinite(t).all() or (t < 0).any():
        raise ValueError("horizon_days must be finite and non-negative")
    return np.broadcast_to(t, (n,))


def _validate_monetary(monetary_value: ArrayLike, x: FloatArray) -> FloatArray:
    m = _as_1d_float("monetary_value", monetary_value)
    if m.size != x.size:
        raise ValueError(f"mismatched lengths: monetary_value={m.size}, frequency={x.size}")
    repeat = x > 0
    if not np.isfinite(m[repeat]).all():
        raise ValueError("monetary_value contains NaN or infinite values for frequency >= 1")
    if np.isinf(m).any():
        raise ValueError("monetary_value contains infinite values")
    return m


# --------------------------------------------------------------------------------------
# Optimisation helpers
# --------------------------------------------------------------------------------------


def _minimise(
    objective: Callable[[FloatArray], tuple[float, FloatArray]],
    theta0: FloatArray,
    model: str,
) -> FloatArray:
    result = optimize.minimize(
        objective,
        theta0,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-_LOG_BOUND, _LOG_BOUND)] * theta0.size,
        # Tighter than the defaults, which stop ~1e-4 (relative) short of the optimum in
        # the parameters; the extra evaluations cost little next to reproducibility.
        options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9},
    )
    # L-BFGS-B often reports a line-search "failure" at the optimum when the objective is
    # flat to rounding; a finite result there is the answer, so only non-finite is fatal.
    if not (np.isfinite(result.fun) and np.isfinite(result.x).all()):
        raise RuntimeError(
            f"{model} fit did not converge to a finite optimum: {result.message} "
            f"(objective={result.fun!r}, log-parameters={result.x!r})"
        )
    return np.asarray(result.x, dtype=np.float64)


def _compress(
    x: FloatArray, tx: FloatArray, t_obs: FloatArray, w: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Collapse customers to unique (x, t_x, T) rows with summed weights.

    The BG/NBD likelihood depends on a customer only through (x, t_x, T), and with whole
    days millions of customers share a few hundred thousand combinations.
    """
    keep = w > 0
    x, tx, t_obs, w = x[keep], tx[keep], t_obs[keep], w[keep]
    integral = (tx == np.floor(tx)).all() and (t_obs == np.floor(t_obs)).all()
    span = int(t_obs.max()) + 1
    if not (integral and (float(x.max()) + 1.0) * span * span < 2.0**62):
        rows = np.column_stack([x, tx, t_obs])
        _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
        summed = np.bincount(inverse.reshape(-1), weights=w, minlength=first.size)
        return x[first], tx[first], t_obs[first], summed

    # Whole days: one int64 key per customer, decoded back after grouping.
    key = (x.astype(np.int64) * span + tx.astype(np.int64)) * span + t_obs.astype(np.int64)
    if (w == 1.0).all():
        # Raw customers: counting needs only a plain sort, many times faster than the
        # argsort behind np.unique(return_inverse=True).
        key = np.sort(key)
        starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
        summed = np.diff(np.append(starts, key.size)).astype(np.float64)
        unique_key = key[starts]
    else:
        unique_key, inverse = np.unique(key, return_inverse=True)
        summed = np.bincount(inverse.reshape(-1), weights=w, minlength=unique_key.size)
    t_part = unique_key % span
    tx_part = (unique_key // span) % span
    x_part = unique_key // (span * span)
    return (
        x_part.astype(np.float64),
        tx_part.astype(np.float64),
        t_part.astype(np.float64),
        summed,
    )


# --------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------


def _group_by_value(x: FloatArray) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """Distinct values of x and the index of each row's value, for per-x precomputation.

    Frequencies are small whole numbers, so a counting pass replaces a sort.
    """
    if x.size and float(x.max()) < 1e7 and (x == np.floor(x)).all():
        as_int = x.astype(np.intp)
        present = np.flatnonzero(np.bincount(as_int))
        lookup = np.zeros(int(present[-1]) + 1, dtype=np.intp)
        lookup[present] = np.arange(present.size)
        return present.astype(np.float64), lookup[as_int]
    ux, xi = np.unique(x, return_inverse=True)
    return ux, xi.reshape(-1)


def bgnbd_log_likelihood(
    params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Per-customer BG/NBD log-likelihood, eq. 6, with time in days.

    ln L = ln G(r+x) - ln G(r) + r ln alpha - ln B(a, b)
           + logsumexp( ln B(a, b+x) - (r+x) ln(alpha+T),
                        [x>0] ln B(a+1, b+x-1) - (r+x) ln(alpha+t_x) )

    which is eq. 6 with B(a, b+x) a/(b+x-1) rewritten as B(a+1, b+x-1) so both mixture
    terms live in log space and neither over- nor underflows for large x or T.
    """
    x, tx, t_obs = _validate_summaries(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    safe_x1 = np.where(x > 0, x - 1.0, 0.0)
    term_alive = special.betaln(a, b + x) - (r + x) * np.log(alpha + t_obs)
    term_dead = special.betaln(a + 1.0, b + safe_x1) - (r + x) * np.log(alpha + tx)
    mix = np.logaddexp(term_alive, np.where(x > 0, term_dead, -np.inf))
    lead = special.gammaln(r + x) - special.gammaln(r) + r * math.log(alpha)
    return lead - special.betaln(a, b) + mix


def _bgnbd_objective(
    x: FloatArray, tx: FloatArray, t_obs: FloatArray, w: FloatArray, penalizer_coef: float
) -> Callable[[FloatArray], tuple[float, FloatArray]]:
    """Weighted mean negative log-likelihood over theta = ln(r, alpha, a, b), with gradient.

    The log-likelihood of ``bgnbd_log_likelihood`` rearranged for speed: with
    d = term_dead - term_alive, ln L = [terms in x alone] - (r+x) ln(alpha+T)
    + softplus(d). Terms in x alone are summed per distinct x, so each evaluation makes
    only a few vectorised passes over the rows. pi = expit(d) is the posterior
    probability that the customer dropped out after t_x; the gradient is a pi-weighted
    blend of the two mixture terms' gradients, using psi(a+1) - psi(a) = 1/a and
    psi(b+x-1) - psi(b+x) = -1/(b+x-1).
    """
    total = float(w.sum())
    ux, xi = _group_by_value(x)  # once per fit, not once per evaluation
    w_u = np.bincount(xi, weights=w, minlength=ux.size)
    has_repeat_u = ux > 0
    ux_m1 = np.where(has_repeat_u, ux - 1.0, 0.0)  # placeholder keeps b+x-1 > 0 at x == 0
    # alpha carries the time unit, so an L2 pull on it would depend on that unit; r alone
    # already stops the (r, alpha) -> infinity ridge because r/alpha is the mean rate.
    penalised = np.array([1.0, 0.0, 1.0, 1.0])

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        params = np.exp(theta)
        r, alpha, a, b = (float(v) for v in params)
        beta_alive_u = special.betaln(a, b + ux)
        beta_dead_u = special.betaln(a + 1.0, b + ux_m1)
        diff_u = np.where(has_repeat_u, beta_dead_u - beta_alive_u, -np.inf)
        inv_b_x1_u = np.where(has_repeat_u, 1.0 / (b + ux_m1), 0.0)

        log_t = np.log(alpha + t_obs)
        log_ratio = np.log(alpha + tx) - log_t  # ln((alpha+t_x)/(alpha+T)) <= 0
        r_x = r + x
        d = diff_u[xi] - r_x * log_ratio
        pi_dead = special.expit(d)
        w_pi = w * pi_dead
        w_r_x = w * r_x
        inv_t = 1.0 / (alpha + t_obs)

        psi_ab_x_u = special.digamma(a + b + ux)
        ll = (
            float(w_u @ (special.gammaln(r + ux) + beta_alive_u))
            + total * (r * math.log(alpha) - special.gammaln(r) - special.betaln(a, b))
            - float(w_r_x @ log_t)
            + float(w @ np.logaddexp(0.0, d))
        )
        d_r = (
            float(w_u @ special.digamma(r + ux))
            + total * (math.log(alpha) - special.digamma(r))
            - float(w @ log_t)
            - float(w_pi @ log_ratio)
        )
        d_alpha = total * r / alpha - float(w_r_x @ inv_t)
        d_alpha -= float((w_pi * r_x) @ (1.0 / (alpha + tx) - inv_t))
        d_a = (
            total * (special.digamma(a + b) - special.digamma(a))
            + float(w_u @ (special.digamma(a) - psi_ab_x_u))
            + float(w_pi.sum()) / a
        )
        d_b = (
            total * (special.digamma(a + b) - special.digamma(b))
            + float(w_u @ (special.digamma(b + ux) - psi_ab_x_u))
            - float(w_pi @ inv_b_x1_u[xi])
        )
        grad = np.array([d_r, d_alpha, d_a, d_b])
        value = -ll / total + penalizer_coef * float(penalised @ params**2)
        # Chain rule for log-parameters: d/d(ln theta) = theta * d/d(theta).
        gradient = -grad * params / total + penalizer_coef * 2.0 * penalised * params**2
        return value, gradient

    return objective


def fit_bgnbd(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    weights: ArrayLike | None = None,
    penalizer_coef: float = 0.0,
) -> BgNbdParams:
    """Maximum-likelihood BG/NBD fit (eq. 6 summed over customers).

    ``weights`` (optional, non-negative; normally integer counts) lets each row stand for
    that many identical customers. Rows are always collapsed to unique (x, t_x, T) with
    summed weights first, so passing raw customers is as fast as passing a grouped table.
    ``penalizer_coef`` adds ``penalizer_coef * (r**2 + a**2 + b**2)`` to the mean negative
    log-likelihood (as lifetimes does, minus alpha, which depends on the time unit).
    """
    x, tx, t_obs = _validate_summaries(frequency, recency, T)
    w = _validate_weights(weights, x.size)
    if penalizer_coef < 0 or not math.isfinite(penalizer_coef):
        raise ValueError("penalizer_coef must be a non-negative finite number")
    if float(w @ x) <= 0:
        raise ValueError("no repeat purchases (all frequency == 0): BG/NBD cannot be fitted")
    x, tx, t_obs, w = _compress(x, tx, t_obs, w)

    # Work in units of the mean customer age so alpha starts near the others' scale.
    scale = float(w @ t_obs) / float(w.sum())
    scale = scale if scale > 0 else 1.0
    tx_s, t_s = tx / scale, t_obs / scale

    rate = float(w @ x) / max(float(w @ t_s), 1e-12)
    theta0 = np.log(np.array([1.0, 1.0 / rate, 1.0, 1.0]))
    theta0 = np.clip(theta0, -_LOG_BOUND + 1, _LOG_BOUND - 1)
    theta = _minimise(_bgnbd_objective(x, tx_s, t_s, w, penalizer_coef), theta0, "BG/NBD")
    r, alpha_s, a, b = np.exp(theta)
    return BgNbdParams(r=float(r), alpha=float(alpha_s * scale), a=float(a), b=float(b))


def _bgnbd_log_odds_dead(
    params: BgNbdParams, x: FloatArray, tx: FloatArray, t_obs: FloatArray
) -> FloatArray:
    """ln of  [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x), the denominator term of eq. 10."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    safe_x1 = np.where(x > 0, x - 1.0, 0.0)
    log_odds = (
        math.log(a) - np.log(b + safe_x1) + (r + x) * (np.log(alpha + t_obs) - np.log(alpha + tx))
    )
    return np.where(x > 0, log_odds, -np.inf)


def _expected_given_alive_hyp2f1(
    r: float, alpha: float, a: float, b: float, x: FloatArray, t_obs: FloatArray, t: FloatArray
) -> FloatArray:
    """E[Y(t) | alive at T, x, T]: eq. 10's numerator after an Euler transformation.

    Eq. 10 has (1-z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z), z = t/(alpha+T+t); its 2F1 overflows
    for large x. Euler's transformation 2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z)
    turns the product into (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose upper
    parameters do not grow with x and whose series converges faster as x grows.
    """
    z = t / (alpha + t_obs + t)
    c = a + b + x - 1.0
    tail = np.exp((a - 1.0) * np.log1p(-z)) * special.hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
    return c / (a - 1.0) * (1.0 - tail)


def _quantile_nodes() -> tuple[FloatArray, FloatArray]:
    """Gauss-Legendre nodes and weights on [0, 1], on panels graded toward both ends.

    The panels reach u = 1e-30 because the integrand's only sharp feature, at
    p ~ 1 / ((r+x) t/(alpha+T)), can sit that deep in the lower tail of the posterior.
    """
    edges = np.concatenate(
        [
            [0.0],
            np.logspace(-30.0, math.log10(0.5), 31),
            1.0 - np.logspace(math.log10(0.5), -16.0, 17)[1:],
            [1.0],
        ]
    )
    base, base_w = np.polynomial.legendre.leggauss(24)
    lo, hi = edges[:-1, None], edges[1:, None]
    nodes = lo + (hi - lo) * (base + 1.0) / 2.0
    weights = (hi - lo) / 2.0 * base_w
    return nodes.ravel(), weights.ravel()


_U_NODES, _U_WEIGHTS = _quantile_nodes()


def _expected_given_alive_quadrature(
    r: float, alpha: float, a: float, b: float, x: FloatArray, t_obs: FloatArray, t: FloatArray
) -> FloatArray:
    """Same quantity as the 2F1 form, by quadrature over the posterior of p.

    Given alive at T, lambda ~ Gamma(r+x, alpha+T) and p ~ Beta(a, b+x) independently, and
    E[Y(t) | lambda, p] = (1 - exp(-lambda p t)) / p (the individual-level mean), so
    E = E_p[(1 - (1 + p t/(alpha+T))^-(r+x)) / p]. Integrating over the posterior's
    quantiles u (p = F^-1(u)) makes the weight flat whatever a and b+x are. Slow, so only
    for the rare customers where scipy's 2F1 breaks down (large x and z near 1).
    """
    out = np.empty(x.size)
    chunk = 512  # bounds memory at chunk * len(_U_NODES) floats
    for start in range(0, x.size, chunk):
        sl = slice(start, start + chunk)
        xs = x[sl, None]
        p = special.betaincinv(a, b + xs, _U_NODES[None, :])
        k = (t[sl] / (alpha + t_obs[sl]))[:, None]
        safe_p = np.where(p > 0, p, 1.0)
        f = np.where(p > 0, -np.expm1(-(r + xs) * np.log1p(p * k)) / safe_p, (r + xs) * k)
        out[sl] = f @ _U_WEIGHTS
    return out


def _expected_given_alive(
    params: BgNbdParams, x: FloatArray, t_obs: FloatArray, t: FloatArray
) -> FloatArray:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < _A_NEAR_ONE:
        # Linear interpolation across the singularity: O(delta^2) error, no cancellation.
        lo = _expected_given_alive_hyp2f1(r, alpha, 1.0 - _A_NEAR_ONE, b, x, t_obs, t)
        hi = _expected_given_alive_hyp2f1(r, alpha, 1.0 + _A_NEAR_ONE, b, x, t_obs, t)
        out = lo + (a - (1.0 - _A_NEAR_ONE)) / (2.0 * _A_NEAR_ONE) * (hi - lo)
    else:
        out = _expected_given_alive_hyp2f1(r, alpha, a, b, x, t_obs, t)
    # The answer lies in [0, t * E[lambda | alive]]; anything else is 2F1 breaking down.
    upper = t * (r + x) / (alpha + t_obs)
    bad = ~np.isfinite(out) | (out < -1e-9 * (1.0 + upper)) | (out > upper * (1 + 1e-6) + 1e-12)
    if bad.any():
        out[bad] = _expected_given_alive_quadrature(r, alpha, a, b, x[bad], t_obs[bad], t[bad])
    return np.clip(out, 0.0, upper)


def bgnbd_prob_alive(
    params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """P(alive at T | x, t_x, T) = 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)).

    This is the reciprocal of eq. 10's denominator (derived in Fader, Hardie & Lee's note
    "Computing P(alive) using the BG/NBD model"). Customers without repeat purchases are
    alive with probability 1: in BG/NBD dropout can only follow a repeat purchase.
    """
    x, tx, t_obs = _validate_summaries(frequency, recency, T)
    return special.expit(-_bgnbd_log_odds_dead(params, x, tx, t_obs))


def bgnbd_expected_purchases(
    params: BgNbdParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    horizon_days: ArrayLike,
) -> FloatArray:
    """E[Y(t) | x, t_x, T]: expected repeat purchases in the next ``horizon_days`` (eq. 10).

    Computed as P(alive) * E[Y(t) | alive], the second factor via the Euler-transformed
    hypergeometric form (see ``_expected_given_alive_hyp2f1``) with a quadrature fallback.
    """
    x, tx, t_obs = _validate_summaries(frequency, recency, T)
    t = _validate_horizon(horizon_days, x.size)
    alive = special.expit(-_bgnbd_log_odds_dead(params, x, tx, t_obs))
    return alive * _expected_given_alive(params, x, t_obs, t)


def bgnbd_prob_purchase(
    params: BgNbdParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    horizon_days: ArrayLike,
) -> FloatArray:
    """P(at least one purchase in (T, T+t] | x, t_x, T).

    = P(alive) * (1 - ((alpha+T)/(alpha+T+t))^(r+x)).

    This is exact under BG/NBD, not an approximation: dropout happens only immediately
    after a purchase, so a customer alive at T makes the next purchase after an
    Exp(lambda) wait whatever p is, and lambda | alive ~ Gamma(r+x, alpha+T). It is
    P(Y(t) > 0) from the conditional pmf of Y(t).
    """
    x, tx, t_obs = _validate_summaries(frequency, recency, T)
    t = _validate_horizon(horizon_days, x.size)
    alive = special.expit(-_bgnbd_log_odds_dead(params, x, tx, t_obs))
    return alive * -np.expm1(-(params.r + x) * np.log1p(t / (params.alpha + t_obs)))


# --------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------


def _gg_log_likelihood(p: float, q: float, v: float, x: FloatArray, m: FloatArray) -> FloatArray:
    """Per-customer Gamma-Gamma log-density of the mean m_x of x orders.

    ln f = ln G(px+q) - ln G(px) - ln G(q) + q ln v + (px-1) ln m + px ln x
           - (px+q) ln(v + x m)

    (the marginal density of m_x in the Fader-Hardie note: z ~ Gamma(p, nu) per order,
    so m_x | nu ~ Gamma(px, x nu), integrated over nu ~ Gamma(q, v)).
    """
    px = p * x
    return (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * math.log(v)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(v + x * m)
    )


def _gg_objective(
    x: FloatArray, m: FloatArray, w: FloatArray, penalizer_coef: float
) -> Callable[[FloatArray], tuple[float, FloatArray]]:
    """Mean negative log-likelihood over theta = (ln p, ln(q-1), ln v), with gradient.

    Only -(px+q) ln(v + x m) needs a pass over the customers per evaluation: the terms in
    x alone are summed per distinct x, and those in ln m alone are constant sums.
    """
    total = float(w.sum())
    ux, xi = _group_by_value(x)
    w_u = np.bincount(xi, weights=w, minlength=ux.size)
    log_ux = np.log(ux)
    xm = x * m
    wx = w * x
    sum_x_log_m = float(wx @ np.log(m))
    sum_log_m = float(w @ np.log(m))

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        p, q_minus_1, v = np.exp(theta)
        q = 1.0 + q_minus_1
        px_u = p * ux
        v_xm = v + xm
        log_vxm = np.log(v_xm)
        inv_vxm = 1.0 / v_xm
        sum_log_vxm = float(w @ log_vxm)
        sum_x_log_vxm = float(wx @ log_vxm)
        ll = (
            float(w_u @ (special.gammaln(px_u + q) - special.gammaln(px_u) + px_u * log_ux))
            + total * (q * math.log(v) - special.gammaln(q))
            + p * sum_x_log_m
            - sum_log_m
            - p * sum_x_log_vxm
            - q * sum_log_vxm
        )
        psi_u = special.digamma(px_u + q)
        d_p = float(w_u @ (ux * (psi_u - special.digamma(px_u) + log_ux)))
        d_p += sum_x_log_m - sum_x_log_vxm
        d_q = float(w_u @ psi_u) + total * (math.log(v) - special.digamma(q)) - sum_log_vxm
        d_v = total * q / v - p * float(wx @ inv_vxm) - q * float(w @ inv_vxm)
        # q (not q - 1) is penalised: the parametrisation is an implementation detail.
        value = -ll / total + penalizer_coef * (p**2 + q**2)
        gradient = np.array(
            [
                -d_p * p / total + penalizer_coef * 2.0 * p * p,
                -d_q * q_minus_1 / total + penalizer_coef * 2.0 * q * q_minus_1,
                -d_v * v / total,
            ]
        )
        return value, gradient

    return objective


def _gg_usable(x: FloatArray, m: FloatArray) -> npt.NDArray[np.bool_]:
    with np.errstate(invalid="ignore"):
        return (x > 0) & (m > 0)


def gamma_gamma_log_likelihood(
    params: GammaGammaParams, frequency: ArrayLike, monetary_value: ArrayLike
) -> FloatArray:
    """Per-customer Gamma-Gamma log-likelihood; NaN where x == 0 or m_x <= 0."""
    x = _validate_frequency(frequency)
    m = _validate_monetary(monetary_value, x)
    use = _gg_usable(x, m)
    out = np.full(x.size, np.nan)
    out[use] = _gg_log_likelihood(params.p, params.q, params.v, x[use], m[use])
    return out


# How far Gamma-Gamma's population mean order value may stand above the fitted customers'
# mean. Fits where the mixing gamma holds came out at 1.00-1.03 times it (CDNOW, generated
# BTYD customers); on generated retail and wholesale customers it was 2 to 20 times, up to
# 1.5e8 where q sat at its bound, and such a base cost the forecast its level (BTYD's
# total +134% on one) and its quantiles (see docs/model.md).
POPULATION_MEAN_BOUND = 1.5


def fit_gamma_gamma(
    frequency: ArrayLike,
    monetary_value: ArrayLike,
    weights: ArrayLike | None = None,
    penalizer_coef: float = 0.0,
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma fit on customers with x >= 1 and m_x > 0.

    ``monetary_value`` is the mean of the customer's x repeat purchases. q is
    parametrised as 1 + exp(theta) so the population mean p v / (q - 1) always exists.
    ``penalizer_coef`` adds ``penalizer_coef * (p**2 + q**2)`` (v is in currency units).
    """
    x = _validate_frequency(frequency)
    m = _validate_monetary(monetary_value, x)
    w = _validate_weights(weights, x.size)
    if penalizer_coef < 0 or not math.isfinite(penalizer_coef):
        raise ValueError("penalizer_coef must be a non-negative finite number")
    use = _gg_usable(x, m) & (w > 0)
    if not use.any():
        raise ValueError(
            "Gamma-Gamma needs at least one customer with frequency >= 1 and a positive "
            "monetary_value"
        )
    x, m, w = x[use], m[use], w[use]
    total = float(w.sum())
    # Money in units of the mean order value keeps v near the other parameters' scale.
    scale = float(w @ m) / total
    m_s = m / scale

    objective = _gg_objective(x, m_s, w, penalizer_coef)
    theta0 = np.log(np.array([1.0, 1.0, 1.0]))
    p, q_minus_1, v_s = np.exp(_minimise(objective, theta0, "Gamma-Gamma"))
    if p * v_s / q_minus_1 > POPULATION_MEAN_BOUND:
        # Order values too heterogeneous for one mixing gamma (retail and wholesale): q
        # runs towards 1, and p v / (q - 1), a one-purchase customer's forecast, with it.
        # The fitted customers' mean order value (1 in these units) stands in for it; q
        # moves, p and v keep their fitted values.
        q_minus_1 = p * v_s
    return GammaGammaParams(p=float(p), q=float(1.0 + q_minus_1), v=float(v_s * scale))


def gamma_gamma_expected_order_value(
    params: GammaGammaParams, frequency: ArrayLike, monetary_value: ArrayLike
) -> FloatArray:
    """E(M | m_x, x) = p (v + x m_x) / (p x + q - 1), the Fader-Hardie conditional mean.

    = (q-1)/(px+q-1) * p v/(q-1) + px/(px+q-1) * m_x: a credibility-weighted blend of the
    population mean and the customer's own mean, so few orders shrink toward the former.
    Where x == 0 or m_x <= 0 the population mean p v / (q - 1) is returned.
    """
    x = _validate_frequency(frequency)
    m = _validate_monetary(monetary_value, x)
    p, q, v = params.p, params.q, params.v
    use = _gg_usable(x, m)
    safe_m = np.where(use, m, 0.0)
    conditional = p * (v + x * safe_m) / (p * x + q - 1.0)
    return np.where(use, conditional, params.population_mean)


# --------------------------------------------------------------------------------------
# Predictive distribution of spend over a window
# --------------------------------------------------------------------------------------

# Purchase counts are summed up to the count where every customer's remaining mass is
# below this; what is left over counts as spend above any value (a quantile errs high).
_COUNT_TAIL = 1e-5
_MAX_COUNT = 400
_NEWTON_STEPS = 60
_Z_TOLERANCE = 1e-7  # on log spend: a relative error of 1e-7
_CHUNK_CUSTOMERS = 4096  # times at most _MAX_COUNT + 1 counts in memory at once


def _counts_given_alive(
    params: BgNbdParams, x: FloatArray, t_obs: FloatArray, t: FloatArray, counts: int
) -> FloatArray:
    """P(Y(t) = n | alive at T, x, T) for n = 0 .. counts, one row per customer.

    Given alive at T, lambda ~ Gamma(r+x, alpha+T) and p ~ Beta(a, b+x) independently.
    n purchases and still alive: (1-p)^n Poisson(n; lambda t); n purchases and dropped
    out after the last: p (1-p)^(n-1) P(N(t) >= n). Over lambda the Poisson becomes the
    negative binomial NB(r+x, t/(alpha+T+t)); over p the powers become beta functions.
    Each term comes from the one before (ratios of gamma and beta functions), so no
    special function is evaluated per cell.
    """
    a, b = params.a, params.b
    n = np.arange(1, counts + 1, dtype=float)[None, :]
    shape = (params.r + x)[:, None]
    success = (t / (params.alpha + t_obs + t))[:, None]
    b_post = (b + x)[:, None]
    nb = np.empty((x.size, counts + 1))
    nb[:, :1] = np.exp(shape * np.log1p(-success))
    nb[:, 1:] = nb[:, :1] * np.cumprod((shape + n - 1.0) / n * success, axis=1)
    at_least = np.clip(1.0 - np.cumsum(nb[:, :-1], axis=1), 0.0, 1.0)  # P(N(t) >= n)
    survive = np.ones((x.size, counts + 1))  # E[(1-p)^n]
    survive[:, 1:] = np.cumprod((b_post + n - 1.0) / (a + b_post + n - 1.0), axis=1)
    drop = a / (a + b_post + n - 1.0) * survive[:, :-1]  # E[p (1-p)^(n-1)]
    given_alive = survive * nb
    given_alive[:, 1:] += drop * at_least
    return given_alive


def _counts_given_purchase(
    params: BgNbdParams, x: FloatArray, t_obs: FloatArray, t: FloatArray
) -> FloatArray:
    """P(Y(t) = n | Y(t) >= 1) for n = 1, 2, ..., one row per customer.

    Whoever buys was alive, so this is the count given alive, truncated at zero; it
    stays defined where BTYD thinks a customer is all but gone. Each row ends at the
    first count where its own mass reaches 1 - _COUNT_TAIL, so a customer's
    distribution does not depend on which customers share its batch.
    """
    # P(Y(t) >= 1 | alive) = 1 - NB(0), exactly, whatever the number of counts summed.
    buys = -np.expm1((params.r + x) * np.log1p(-t / (params.alpha + t_obs + t)))[:, None]
    counts = 16
    while True:
        weights = _counts_given_alive(params, x, t_obs, t, counts)[:, 1:]
        weights = weights / np.where(buys > 0, buys, 1.0)
        weights[buys[:, 0] <= 0] = 0.0
        weights[buys[:, 0] <= 0, 0] = 1.0  # no time to buy in: one purchase, as a limit
        reached = np.cumsum(weights, axis=1) >= 1.0 - _COUNT_TAIL
        if reached[:, -1].all() or counts >= _MAX_COUNT:
            break
        counts *= 2
    # Keep each row up to and including its first count that reaches the mass.
    beyond = np.cumsum(reached, axis=1) > 1
    weights = np.where(beyond, 0.0, weights)
    used = int((~beyond).sum(axis=1).max())
    return weights[:, :used]


def _spend_posterior(
    model: BtydModel, x: FloatArray, m: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Gamma-Gamma's posterior of each customer's nu: (shape q + p x, rate v + x m_x)."""
    gg = model.gamma_gamma
    use = _gg_usable(x, m)
    shape = np.where(use, gg.q + gg.p * x, gg.q)
    rate = np.where(use, gg.v + x * np.where(use, m, 0.0), gg.v)
    return shape, rate


def btyd_spend_quantiles(
    model: BtydModel,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    horizon_days: ArrayLike,
    levels: tuple[float, ...],
) -> FloatArray:
    """Quantiles of spend over the horizon from BG/NBD + Gamma-Gamma's own distribution.

    Spend is 0 with BG/NBD's P(no purchase) and otherwise the sum of n purchase days'
    values, n from BG/NBD's count distribution given at least one purchase.
    Gamma-Gamma makes each day's value Gamma(p, nu) with nu | history ~ Gamma(q + p x,
    v + x m_x), so a sum of n values divided by c = v + x m_x is beta-prime(p n, q + p x),
    whose CDF at s is the regularised incomplete beta I(s / (s + c); p n, q + p x).
    One row per customer, one column per level. Exact, and so not cheap (about 10 s
    per 100k customers over 90 days here): the backtest's baseline, not the scoring.
    """
    x, tx, t_obs, t, m = _validate_spend_inputs(frequency, recency, T, monetary_value, horizon_days)
    prob = bgnbd_prob_purchase(model.bgnbd, x, tx, t_obs, t)[:, None]
    # The level among buyers; at or below zero the quantile is no spend at all.
    targets = np.asarray(levels, dtype=float)[None, :]
    among_buyers = np.where(prob > 0, (targets - (1.0 - prob)) / np.where(prob > 0, prob, 1.0), 0.0)
    shape_post, rate_post = _spend_posterior(model, x, m)
    out = np.zeros((x.size, targets.size))
    # Customers with similar purchase counts share a chunk, so few need many counts.
    order = np.argsort(model.expected_purchases(x, tx, t_obs, t), kind="stable")
    for start in range(0, x.size, _CHUNK_CUSTOMERS):
        rows = order[start : start + _CHUNK_CUSTOMERS]
        weights = _counts_given_purchase(model.bgnbd, x[rows], t_obs[rows], t[rows])
        out[rows] = _buyer_quantiles(
            weights, model.gamma_gamma.p, shape_post[rows], rate_post[rows], among_buyers[rows]
        )
    return out


def btyd_spend_given_purchase(
    model: BtydModel,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    horizon_days: ArrayLike,
) -> tuple[FloatArray, FloatArray]:
    """(mean, variance) of spend over the horizon given at least one purchase, under
    the distribution of btyd_spend_quantiles; the variance is infinite where
    Gamma-Gamma's posterior shape q + p x is 2 or less.

    Given n purchase days, spend is c times a beta-prime(p n, b) (b = q + p x), with
    mean p n / (b - 1) and second moment p n (p n + 1) / ((b - 1) (b - 2)); the count's
    moments given a purchase come from its distribution, summed. Cheap: no special
    function per count.
    """
    x, _, t_obs, t, m = _validate_spend_inputs(frequency, recency, T, monetary_value, horizon_days)
    b, c = _spend_posterior(model, x, m)
    mean = np.empty(x.size)
    variance = np.empty(x.size)
    for start in range(0, x.size, _CHUNK_CUSTOMERS):
        rows = slice(start, start + _CHUNK_CUSTOMERS)
        weights = _counts_given_purchase(model.bgnbd, x[rows], t_obs[rows], t[rows])
        mean[rows], variance[rows] = _moments_given_purchase(weights, model.gamma_gamma.p, b[rows])
    return c * mean, c**2 * variance


def _moments_given_purchase(
    weights: FloatArray, p: float, b: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """(mean, variance) of spend over c given a purchase: the beta-prime(p n, b) mixture
    with weights P(n | a purchase), from the count's first two moments."""
    n = np.arange(1, weights.shape[1] + 1, dtype=float)[None, :]
    first = (weights * n).sum(axis=1)
    second = (weights * n * n).sum(axis=1)
    mean = p * first / (b - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        square = (p * p * second + p * first) / ((b - 1.0) * (b - 2.0))
    return mean, np.where(b > 2.0, np.maximum(square - mean**2, 0.0), np.inf)


def _validate_spend_inputs(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    horizon: ArrayLike,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    x, tx, t_obs = _validate_summaries(frequency, recency, T)
    t = np.array(_validate_horizon(horizon, x.size), dtype=float)
    return x, tx, t_obs, t, _validate_monetary(monetary_value, x)


def _lognormal_start(
    weights: FloatArray, p: float, b: FloatArray, levels: FloatArray
) -> FloatArray:
    """log(s / c) at each level of the log-normal with the mixture's mean and variance."""
    mu, sigma = distribution.log_normal_parameters(*_moments_given_purchase(weights, p, b))
    return mu + sigma * special.ndtri(np.clip(levels, 1e-9, 1 - 1e-9))


def _buyer_quantiles(
    weights: FloatArray, p: float, shape_post: FloatArray, rate_post: FloatArray, levels: FloatArray
) -> FloatArray:
    """Per customer and column, the spend s where sum_n w_n I(s / (s + c); p n, b) = level.

    levels holds one level among buyers per customer and column; at or below 0 the
    answer is 0. Customers are solved in groups of like count support (up to 8, 16,
    32, ... counts), each as wide as its longest: a chunk's width is its heaviest
    buyer's, and most customers need a fraction of it (3x less work on a backtest).
    """
    out = np.zeros(levels.shape)
    support = weights.shape[1] - np.argmax(weights[:, ::-1] > 0, axis=1)
    group = np.ceil(np.log2(np.maximum(support, 8))).astype(int)
    for column in range(levels.shape[1]):
        for size in np.unique(group):
            rows = np.flatnonzero((levels[:, column] > 0) & (group == size))
            if rows.size == 0:
                continue
            width = int(support[rows].max())
            target = np.minimum(levels[rows, column], 1.0 - 1e-12)
            z = _log_spend_at(weights[rows, :width], p, shape_post[rows], target)
            out[rows, column] = rate_post[rows] * np.exp(z)
    return out


def _log_spend_at(w: FloatArray, p: float, b: FloatArray, target: FloatArray) -> FloatArray:
    """z = log(s / c) where sum_n w_n I(u; p n, b) = target, u = expit(z), per row.

    Newton's method, kept inside a shrinking bracket (bisection when a step would leave
    it). Each row stops on its own, and only those still moving are computed.
    """
    value_shape = p * np.arange(1, w.shape[1] + 1, dtype=float)[None, :]
    b = b[:, None]
    z = _lognormal_start(w, p, b[:, 0], target)
    low = np.full(z.size, -60.0)
    high = np.full(z.size, 60.0)
    moving = np.arange(z.size)
    for _ in range(_NEWTON_STEPS):
        if moving.size == 0:
            break
        wm, bm, zm = w[moving], b[moving], z[moving]
        u = special.expit(zm)[:, None]
        excess = (wm * special.betainc(value_shape, bm, u)).sum(axis=1) - target[moving]
        lo = np.where(excess < 0, zm, low[moving])
        hi = np.where(excess < 0, high[moving], zm)
        # dF/dz = sum_n w_n u^a (1-u)^b / B(a, b): the beta densities times du/dz.
        log_density = value_shape * np.log(u) + bm * np.log1p(-u)
        slope = (wm * np.exp(log_density - special.betaln(value_shape, bm))).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(slope > 0, excess / slope, np.inf)
        proposed = zm - np.clip(step, -2.0, 2.0)  # far out the CDF is flat in z
        newton = (proposed >= lo) & (proposed <= hi)
        moved = np.where(newton, np.abs(proposed - zm), (hi - lo) / 2.0)
        z[moving] = np.where(newton, proposed, (lo + hi) / 2.0)
        low[moving], high[moving] = lo, hi
        moving = moving[moved >= _Z_TOLERANCE]
    return z


# --------------------------------------------------------------------------------------
# Convenience model
# --------------------------------------------------------------------------------------

_MODEL_NAME = "bgnbd+gamma_gamma"
_TIME_UNIT = "days"
_MONETARY = "mean_repeat_purchase_value"


@dataclass(frozen=True)
class BtydModel:
    """Fitted BG/NBD + Gamma-Gamma pair; every method takes per-customer arrays in days.

    ``monetary_value`` everywhere is the mean value of the customer's repeat purchases
    (ignored, may be NaN, where frequency == 0).
    """

    bgnbd: BgNbdParams
    gamma_gamma: GammaGammaParams

    def prob_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        return bgnbd_prob_alive(self.bgnbd, frequency, recency, T)

    def expected_purchases(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, horizon_days: ArrayLike
    ) -> FloatArray:
        return bgnbd_expected_purchases(self.bgnbd, frequency, recency, T, horizon_days)

    def prob_purchase(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, horizon_days: ArrayLike
    ) -> FloatArray:
        return bgnbd_prob_purchase(self.bgnbd, frequency, recency, T, horizon_days)

    def expected_order_value(self, frequency: ArrayLike, monetary_value: ArrayLike) -> FloatArray:
        return gamma_gamma_expected_order_value(self.gamma_gamma, frequency, monetary_value)

    def expected_spend(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        monetary_value: ArrayLike,
        horizon_days: ArrayLike,
    ) -> FloatArray:
        """Expected repeat purchases in the horizon times the expected order value.

        The product of expectations is the Fader-Hardie-Lee CLV building block; it relies
        on the Gamma-Gamma assumption that order value is independent of purchase rate.
        """
        purchases = self.expected_purchases(frequency, recency, T, horizon_days)
        return purchases * self.expected_order_value(frequency, monetary_value)

    def spend_quantiles(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        monetary_value: ArrayLike,
        horizon_days: ArrayLike,
        levels: tuple[float, ...],
    ) -> FloatArray:
        return btyd_spend_quantiles(
            self, frequency, recency, T, monetary_value, horizon_days, levels
        )

    def spend_given_purchase(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        monetary_value: ArrayLike,
        horizon_days: ArrayLike,
    ) -> tuple[FloatArray, FloatArray]:
        return btyd_spend_given_purchase(self, frequency, recency, T, monetary_value, horizon_days)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters, with the conventions needed to use them correctly."""
        return {
            "model": _MODEL_NAME,
            "time_unit": _TIME_UNIT,
            "monetary_value": _MONETARY,
            "bgnbd": {k: float(v) for k, v in asdict(self.bgnbd).items()},
            "gamma_gamma": {k: float(v) for k, v in asdict(self.gamma_gamma).items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BtydModel:
        """Inverse of ``to_dict``; refuses parameters stored under other conventions."""
        for key, expected in (
            ("model", _MODEL_NAME),
            ("time_unit", _TIME_UNIT),
            ("monetary_value", _MONETARY),
        ):
            if key in data and data[key] != expected:
                raise ValueError(
                    f"BtydModel.from_dict: {key} is {data[key]!r}, expected {expected!r}"
                )
        try:
            bg = data["bgnbd"]
            gg = data["gamma_gamma"]
            return cls(
                bgnbd=BgNbdParams(
                    r=float(bg["r"]), alpha=float(bg["alpha"]), a=float(bg["a"]), b=float(bg["b"])
                ),
                gamma_gamma=GammaGammaParams(p=float(gg["p"]), q=float(gg["q"]), v=float(gg["v"])),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"BtydModel.from_dict: missing or malformed parameter: {exc}") from exc


def fit_btyd(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    weights: ArrayLike | None = None,
    penalizer_coef: float = 0.0,
) -> BtydModel:
    """Fit BG/NBD on (x, t_x, T) and Gamma-Gamma on (x, m_x) for the same customers.

    ``monetary_value`` is the mean value of each customer's repeat purchases (lifetimes
    convention); it is ignored where frequency == 0 and may be NaN there. With
    ``weights`` each row counts that many times in both fits. Without, BG/NBD still runs
    on unique (x, t_x, T) rows with counts as weights (see ``fit_bgnbd``).
    """
    x, tx, t_obs = _validate_summaries(frequency, recency, T)
    m = _validate_monetary(monetary_value, x)
    w = _validate_weights(weights, x.size)
    return BtydModel(
        bgnbd=fit_bgnbd(x, tx, t_obs, weights=w, penalizer_coef=penalizer_coef),
        gamma_gamma=fit_gamma_gamma(x, m, weights=w, penalizer_coef=penalizer_coef),
    )
