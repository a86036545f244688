"""Write synthetic customer transactions to CSV or Parquet.

Two populations (--population), with the same columns, refunds, seasonality and defects:

btyd (the default, and the bundled sample): customers buy at heterogeneous, seasonal rates
(gamma-distributed Poisson rates, busier in November and December), may drop out after any
purchase (BG/NBD style), and spend gamma-distributed amounts around a personal mean drawn
independently of everything else (Gamma-Gamma style). BG/NBD + Gamma-Gamma is the true model.

mixed: three kinds of customer for whom BG/NBD + Gamma-Gamma is the wrong model, trait by trait:
  * kinds: 85% retail, 10% wholesale, 5% one-off (a single large project order, never repeated).
    BTYD fits one homogeneous population; here the kinds differ in every respect below.
  * purchase timing: retail buyers are Poisson, but their rates are a mix of two log-normal
    segments (occasional, median one order per 90 days; frequent, one per 14 days), a bimodal
    distribution that no gamma fits. Wholesale customers restock on a regular cycle of 20-40
    days with 10% jitter on the calendar (gaps with a coefficient of variation ~0.1, where a
    Poisson process has 1), without seasonality.
  * dropout: a lifetime in days, not a coin flipped after each purchase (BG/NBD's beta-geometric).
    It depends on the kind and segment: occasional retail buyers stay ~240 days on average,
    frequent ones ~720 (so the more a customer buys, the longer they stay, the opposite of
    per-purchase dropout), and wholesale customers ~3000 days (they rarely leave).
  * order value scale and spread by kind: typical orders of 45 (retail), 650 (wholesale) and
    300 (one-off), log-normal rather than gamma; one wholesale customer's orders vary ~12%
    around their level, one retail customer's ~35%. Wholesale quantities come in cases of 10.
  * order value and frequency: Gamma-Gamma assumes they are independent; here a retail
    customer's order value falls with their purchase rate (~rate^-0.4: frequent buyers bring
    smaller baskets), while wholesale customers are both frequent and big.
  * order value and tenure: baskets grow as the customer ages (log value +0.4 per year since the
    first order for retail, +0.2 for wholesale); Gamma-Gamma's customer mean is constant.
  * order value and the first order: every order of a customer, the first included, scales with
    one personal level, so the first order predicts the later ones. Gamma-Gamma reads repeat
    orders only: for a one-order customer it predicts the population mean whatever they spent.

Seasons (--seasons): "mild" (the default, and the bundled sample) is the monthly profile of
MONTH_WEIGHTS, busier in November and December; "none" a flat calendar; "strong" a yearly
profile that doubles demand over October-December and cuts it to 0.7 over June-August, with
new customers arriving ever faster (three times as many a day at the end as at the start):
a season that BG/NBD, Pareto/NBD and Gamma-Gamma cannot see. Wholesale restocking stays on
its own cycle in every mode.

Clean rows are in chronological order. With --dirty-share F > 0, round(F * rows) extra defective
rows, one defect each, are interleaved at random positions and every column is written as text.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

COLUMNS = ("transaction_id", "customer_id", "transaction_date", "amount", "quantity")

DEFAULT_END_DATE = dt.date(2026, 6, 30)
DEFAULT_HISTORY_DAYS = 730
MAX_DIRTY_SHARE = 0.5

# Reason codes are matched literally by the dbt data-quality models; do not rename.
DEFECT_REASONS = (
    "missing_customer_id",
    "unparsable_transaction_date",
    "missing_amount",
    "non_numeric_amount",
    "non_numeric_quantity",
    "amount_out_of_bounds",
    "after_as_of_date",
    "duplicate_transaction_id",
)
AMOUNT_BOUND = 1_000_000.0

# "btyd": BG/NBD + Gamma-Gamma is the true model; "mixed": kinds of customer it cannot describe.
POPULATIONS = ("btyd", "mixed")
# Customer kinds as reported in GeneratedTransactions.customers: the btyd population is one kind.
KINDS = ("btyd", "retail", "wholesale", "one_off")

# --- behavioural parameters -------------------------------------------------------------------
# Tuned so that a default two-year window yields roughly 10 rows per customer: the long tail of
# loyal heavy buyers is balanced by the many customers who buy once and lapse.
RATE_SHAPE = 0.75  # gamma shape < 1: most customers buy rarely, a few very often
RATE_MEAN_PER_DAY = 1 / 15
DROPOUT_ALPHA = 1.0  # beta(1, 10): mean dropout ~9% per purchase; some leave at once, some stay
DROPOUT_BETA = 10.0
ORDER_SHAPE = 3.0  # per-order gamma shape: orders vary ~58% around the customer's mean
SPEND_SHAPE = 3.0  # inverse-gamma customer means (gamma-gamma model): a tail of big spenders
SPEND_MEAN = 55.0
MIN_ORDER_CENTS = 99
MAX_ORDER_CENTS = 2_500_000  # keeps clean rows far from AMOUNT_BOUND
QUANTITY_P = 0.6  # geometric (capped at 12): mostly 1 item, occasionally several
REFUND_PROBABILITY = 0.033  # a few refunds fall past end_date and are dropped -> ~3% of rows
REFUND_FULL_PROBABILITY = 0.6
REFUND_MEAN_DELAY_DAYS = 7.0

# --- mixed population: see the module docstring ---------------------------------------------
# Arrays indexed by the mixed population's kind codes below (retail, wholesale, one-off).
RETAIL, WHOLESALE, ONE_OFF = 0, 1, 2
MIXED_KIND_SHARES = np.array([0.85, 0.10, 0.05])
MIXED_ORDER_MEDIAN = np.array([45.0, 650.0, 300.0])  # a typical customer's typical order
MIXED_CUSTOMER_SIGMA = np.array([0.7, 0.5, 0.6])  # log-normal spread of customers' levels
MIXED_ORDER_SIGMA = np.array([0.35, 0.12, 0.0])  # spread of one customer's orders around it
MIXED_GROWTH_PER_YEAR = np.array([0.4, 0.2, 0.0])  # log order value gained per year of tenure
# Retail: Poisson buyers in two log-normal rate segments (occasional, frequent).
RETAIL_FREQUENT_SHARE = 0.3
RETAIL_RATE_MEDIAN_PER_DAY = np.array([1 / 90, 1 / 14])
RETAIL_RATE_SIGMA = 0.5
RETAIL_LIFETIME_MEAN_DAYS = np.array([240.0, 720.0])  # exponential lifetimes per segment
RETAIL_RATE_ELASTICITY = -0.4  # order value ~ (rate / reference) ** elasticity
RETAIL_REFERENCE_RATE_PER_DAY = 1 / 30
# Wholesale: a regular restocking cycle on the calendar.
WHOLESALE_CYCLE_DAYS = (20.0, 40.0)  # uniform per customer
WHOLESALE_CYCLE_JITTER = 0.1  # standard deviation of a gap relative to the cycle
WHOLESALE_JITTER_LIMIT = 3.0  # gaps are clipped to cycle * (1 +- 3 jitter)
WHOLESALE_LIFETIME_MEAN_DAYS = 3000.0
WHOLESALE_CASE_SIZE = 10

# Relative demand by calendar month (Jan..Dec) and weekday (Mon..Sun).
MONTH_WEIGHTS = np.array([0.85, 0.8, 0.9, 0.95, 1.0, 0.95, 0.9, 0.95, 1.0, 1.05, 1.4, 1.7])
# --seasons: the monthly profile of each mode, and how much faster new customers arrive at the
# end of the window than at its start (1 = a steady flow).
SEASONS = {
    "mild": (MONTH_WEIGHTS, 1.0),
    "none": (np.ones(12), 1.0),
    "strong": (np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.7, 0.7, 0.7, 1.0, 2.0, 2.0, 2.0]), 3.0),
}
WEEKDAY_WEIGHTS = np.array([0.95, 0.95, 0.97, 1.0, 1.08, 1.12, 0.93])
# Relative demand by hour of day: quiet nights, lunchtime and evening peaks.
HOUR_WEIGHTS = np.array(
    [0.3, 0.2, 0.15, 0.1, 0.1, 0.15, 0.3, 0.6, 0.9, 1.1, 1.2, 1.3]
    + [1.4, 1.3, 1.2, 1.2, 1.25, 1.35, 1.5, 1.7, 1.8, 1.6, 1.1, 0.6]
)

BAD_DATES = (
    "not a date",
    "2024-13-45",
    "31/31/2024",
    "",
    "2025-02-30 12:00:00",
    "2024-06-15 25:61:00",
    "yesterday",
)
BAD_QUANTITIES = ("two", "1.5x", "one", "3 pcs", "n/a")

SECONDS_PER_DAY = 86_400
# pandas' Arrow-backed str dtype stores large_string: producing it directly makes the
# DataFrame conversion free instead of seconds for 10M rows.
TEXT = pa.large_string()
CSV_SLICE_ROWS = 500_000
CUSTOMER_ID_WIDTH = 7
TRANSACTION_ID_WIDTH = 9


@dataclass(frozen=True)
class GeneratedTransactions:
    """Generated rows in file order plus the ground truth about injected defects.

    Clean output (dirty_share == 0) has typed columns: transaction_id and customer_id str,
    transaction_date datetime64[s], amount float64, quantity int64. Dirty output has every
    column as str so that malformed values fit.
    """

    transactions: pd.DataFrame
    defects: pd.DataFrame  # source_row_number (1-based data row in the file), reason
    # One row per customer: customer_id, kind (categorical over KINDS). Ground truth that the
    # file does not carry; every customer of the btyd population is of kind "btyd".
    customers: pd.DataFrame


@dataclass(frozen=True)
class _CleanRows:
    """Clean transactions in chronological order, as plain arrays."""

    customer_number: np.ndarray  # int64, 1-based
    epoch_seconds: np.ndarray  # int64
    amount_cents: np.ndarray  # int64, negative for refunds
    quantity: np.ndarray  # int64 >= 1
    kind: np.ndarray  # int8 per customer (customer number - 1): index into KINDS


# --- public API -------------------------------------------------------------------------------


def generate_transactions(
    customers: int,
    seed: int = 0,
    dirty_share: float = 0.0,
    end_date: dt.date = DEFAULT_END_DATE,
    history_days: int = DEFAULT_HISTORY_DAYS,
    population: str = "btyd",
    seasons: str = "mild",
) -> GeneratedTransactions:
    """Simulate transactions for `customers` customers; deterministic for a given seed.

    population is one of POPULATIONS (see the module docstring): "btyd" draws customers as
    BG/NBD + Gamma-Gamma assume, "mixed" draws retail, wholesale and one-off customers that
    break those assumptions. seasons is a key of SEASONS (see the module docstring). The clean
    rows do not depend on dirty_share: dropping the defect
    rows from a dirty result gives exactly the clean result for the same seed.
    """
    _validate(customers, dirty_share, history_days, population, seasons)
    # Separate streams so the defect injection never perturbs the clean simulation.
    clean_seq, dirty_seq = np.random.SeedSequence(seed).spawn(2)
    rows = _simulate(
        np.random.default_rng(clean_seq), customers, end_date, history_days, population, seasons
    )
    id_width = max(CUSTOMER_ID_WIDTH, len(str(customers)))
    kinds = _customer_frame(rows.kind, id_width)
    if dirty_share == 0:
        table = _typed_table(rows, id_width, _transaction_id_width(len(rows.quantity)))
        defects = _defect_frame(np.empty(0, np.int64), [])
        return GeneratedTransactions(_to_frame(table), defects, kinds)
    defect_count = _defect_count(len(rows.quantity), dirty_share)
    tid_width = _transaction_id_width(len(rows.quantity) + defect_count)
    clean_text = _text_table(rows, id_width, tid_width)
    table, positions, reasons = _inject_defects(
        np.random.default_rng(dirty_seq), clean_text, defect_count, end_date, tid_width
    )
    return GeneratedTransactions(_to_frame(table), _defect_frame(positions + 1, reasons), kinds)


FILE_SUFFIXES = (".csv", ".parquet", ".pq")


def write_transactions(frame: pd.DataFrame, path: str | Path) -> None:
    """Write `frame` as CSV (.csv, with header) or Parquet (.parquet/.pq), creating parent dirs.

    The file appears atomically: it is written next to its destination and then renamed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise ValueError(
            f"cannot write transactions to {str(path)!r}: unsupported extension "
            f"{suffix or '(none)'!r}; use .csv, .parquet or .pq"
        )
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        if suffix == ".csv":
            _write_csv(_csv_ready(table), partial)
        else:
            pq.write_table(table, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


# --- command line -----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--customers", type=_positive_int, required=True, metavar="N", help="number of customers"
    )
    parser.add_argument(
        "--out",
        type=_new_file,
        required=True,
        metavar="PATH",
        help="a new file: .csv, .parquet or .pq (parent dirs created; an existing file is kept)",
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: 0)")
    parser.add_argument(
        "--dirty-share",
        type=_dirty_share,
        default=0.0,
        metavar="F",
        help=f"share of defective rows in [0, {MAX_DIRTY_SHARE}] (default: 0 = clean, typed)",
    )
    parser.add_argument(
        "--end-date",
        type=_iso_date,
        default=DEFAULT_END_DATE,
        metavar="YYYY-MM-DD",
        help=f"last transaction date, YYYY-MM-DD (default: {DEFAULT_END_DATE.isoformat()})",
    )
    parser.add_argument(
        "--history-days",
        type=_positive_int,
        default=DEFAULT_HISTORY_DAYS,
        metavar="N",
        help=f"days of history before --end-date (default: {DEFAULT_HISTORY_DAYS})",
    )
    parser.add_argument(
        "--population",
        choices=POPULATIONS,
        default="btyd",
        help="who the customers are: 'btyd' (default; the bundled sample) buy and spend as "
        "BG/NBD + Gamma-Gamma assume; 'mixed' is 85%% retail, 10%% wholesale and 5%% one-off "
        "customers for whom that model is wrong (a bimodal, non-gamma mix of purchase rates, "
        "regular wholesale restocking, dropout by kind, order values that differ by kind, grow "
        "with tenure, follow the first order and fall with a retail buyer's purchase rate)",
    )
    parser.add_argument(
        "--seasons",
        choices=list(SEASONS),
        default="mild",
        help="the yearly profile of demand: 'mild' (default; the bundled sample) is busier in "
        "November and December; 'none' is flat; 'strong' doubles demand over October-December, "
        "cuts it to 0.7 over June-August and has new customers arrive ever faster",
    )


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    generated = generate_transactions(
        customers=args.customers,
        seed=args.seed,
        dirty_share=args.dirty_share,
        end_date=args.end_date,
        history_days=args.history_days,
        population=args.population,
        seasons=args.seasons,
    )
    write_transactions(generated.transactions, args.out)
    elapsed = time.perf_counter() - started
    population = "" if args.population == "btyd" else f" ({args.population} population)"
    population += "" if args.seasons == "mild" else f" ({args.seasons} seasons)"
    print(
        f"wrote {len(generated.transactions):,} rows ({len(generated.defects):,} defective) "
        f"for {args.customers:,} customers{population} to {args.out} in {elapsed:.1f} s"
    )
    return 0


def _new_file(text: str) -> str:
    """--out: a path to a new data file. A file already there may be the user's own
    export, so it is refused rather than replaced."""
    suffix = Path(text).suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise argparse.ArgumentTypeError(
            f"{text} must end in .csv, .parquet or .pq, not {suffix or 'no extension'}"
        )
    if os.path.lexists(text):
        raise argparse.ArgumentTypeError(
            f"{text} exists: clv generate writes a new file, never over one; remove it or"
            " choose another path"
        )
    return text


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _dirty_share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= MAX_DIRTY_SHARE:
        raise argparse.ArgumentTypeError(f"must be in [0, {MAX_DIRTY_SHARE}], got {text}")
    return value


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from error


def _validate(
    customers: int, dirty_share: float, history_days: int, population: str, seasons: str
) -> None:
    if population not in POPULATIONS:
        raise ValueError(f"population must be one of {', '.join(POPULATIONS)}, got {population!r}")
    if seasons not in SEASONS:
        raise ValueError(f"seasons must be one of {', '.join(SEASONS)}, got {seasons!r}")
    if customers < 1:
        raise ValueError(f"customers must be >= 1, got {customers}")
    if history_days < 1:
        raise ValueError(f"history_days must be >= 1, got {history_days}")
    if not 0.0 <= dirty_share <= MAX_DIRTY_SHARE:
        raise ValueError(f"dirty_share must be in [0, {MAX_DIRTY_SHARE}], got {dirty_share}")


# --- clean simulation -------------------------------------------------------------------------


def _simulate(
    rng: np.random.Generator,
    customers: int,
    end_date: dt.date,
    history_days: int,
    population: str = "btyd",
    seasons: str = "mild",
) -> _CleanRows:
    start = end_date - dt.timedelta(days=history_days)
    days = history_days + 1  # both ends inclusive
    months, growth = SEASONS[seasons]
    cumulative = np.concatenate([[0.0], np.cumsum(_daily_intensity(start, days, months))])

    if population == "btyd":
        # The draws keep their original order: the btyd output must not change.
        counts, clock = _purchase_clock(rng, customers, horizon=cumulative[-1], growth=growth)
        day = _clock_to_day(clock, cumulative)
        seconds = day * SECONDS_PER_DAY + _time_of_day(rng, len(day))
        cents = _order_cents(rng, _customer_spend_means(rng, customers), counts)
        quantity = _sample_table(rng, _quantity_table(), len(cents))
        kind = np.full(customers, KINDS.index("btyd"), dtype=np.int8)
    else:
        mixed = _mixed_purchases(rng, customers, cumulative, growth)
        counts, day, cents, quantity = mixed.counts, mixed.day, mixed.cents, mixed.quantity
        seconds = day * SECONDS_PER_DAY + _time_of_day(rng, len(day))
        kind = (mixed.kind + KINDS.index("retail")).astype(np.int8)

    refund = _refunds(rng, day, cents, quantity, last_day=days - 1)
    refund_day = day[refund.source] + refund.delay_days
    refund_seconds = refund_day * SECONDS_PER_DAY + _time_of_day(rng, len(refund_day))

    owner = np.repeat(np.arange(1, customers + 1, dtype=np.int64), counts)
    order, sorted_seconds = _chronological_order(np.concatenate([seconds, refund_seconds]))
    return _CleanRows(
        customer_number=np.concatenate([owner, owner[refund.source]])[order],
        epoch_seconds=sorted_seconds + _epoch_seconds(start),
        amount_cents=np.concatenate([cents, -refund.cents])[order],
        quantity=np.concatenate([quantity, refund.quantity])[order],
        kind=kind,
    )


def _daily_intensity(start: dt.date, days: int, months: np.ndarray = MONTH_WEIGHTS) -> np.ndarray:
    """Relative demand per calendar day, normalised to mean 1 so rates read as 'per day'."""
    dates = np.datetime64(start, "D") + np.arange(days)
    month = dates.astype("datetime64[M]").astype(np.int64) % 12
    weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    weights = months[month] * WEEKDAY_WEIGHTS[weekday]
    return weights / weights.mean()


def _purchase_clock(
    rng: np.random.Generator, customers: int, horizon: float, growth: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Purchases per customer and their times on the seasonal clock (0..horizon), grouped by
    customer: a first purchase, then repeats until dropout or the horizon.

    Seasonality is a time change: a homogeneous Poisson process on the cumulative-intensity
    clock maps to an inhomogeneous one on the calendar, exactly as thinning would, but without
    drawing events that are then thrown away.
    """
    rate = rng.gamma(RATE_SHAPE, RATE_MEAN_PER_DAY / RATE_SHAPE, customers)
    dropout = np.clip(rng.beta(DROPOUT_ALPHA, DROPOUT_BETA, customers), 1e-9, 1.0)
    birth = _arrivals(rng.uniform(0.0, 1.0, customers), growth) * horizon
    remaining = horizon - birth

    # Events that would happen in the remaining window if the customer never left, and the
    # number of repeats they allow before dropping out (checked after every purchase).
    window_events = rng.poisson(rate * remaining)
    repeats = np.minimum(window_events, rng.geometric(dropout) - 1)
    counts = repeats + 1

    clock = _spread_events(rng, counts, window_events - repeats, birth, remaining)
    return counts, clock


def _arrivals(uniform: np.ndarray, growth: float) -> np.ndarray:
    """First-purchase times in [0, 1) of the window's clock, arriving at a rate that grows
    linearly to growth times its start (inverse of the distribution function of that rate;
    growth 1 returns the uniform draws as they are)."""
    if growth == 1.0:
        return uniform
    slope = growth - 1.0
    return (np.sqrt(1.0 + slope * (2.0 + slope) * uniform) - 1.0) / slope


def _spread_events(
    rng: np.random.Generator,
    counts: np.ndarray,
    unseen: np.ndarray,
    birth: np.ndarray,
    remaining: np.ndarray,
) -> np.ndarray:
    """Times of each customer's counts[i] purchases, grouped by customer: the first at birth[i],
    the rest the first counts[i] - 1 of counts[i] - 1 + unseen[i] sorted uniform times in
    (birth[i], birth[i] + remaining[i]).

    The first k of m sorted uniforms are S_1..S_k / (S_k + Gamma(m - k + 1)) with S the
    cumulative sums of unit exponentials, so only the k kept events are ever drawn. A zero
    gap in each customer's first slot makes S_0 = 0 the first purchase itself.
    """
    ends = np.cumsum(counts)
    starts = ends - counts
    total = int(ends[-1]) if len(ends) else 0  # a mixed population may have no retail buyer
    gaps = rng.standard_exponential(total, dtype=np.float32)
    gaps[starts] = 0.0
    running = np.cumsum(gaps, dtype=np.float64)
    base = running[starts]
    span = running[ends - 1] - base + rng.gamma((unseen + 1).astype(np.float64))
    scale = remaining / np.maximum(span, 1e-12)
    # birth + (running - base) * scale, with the per-customer terms folded into one offset.
    return running * np.repeat(scale, counts) + np.repeat(birth - base * scale, counts)


@dataclass(frozen=True)
class _Purchases:
    """Purchases of the mixed population, grouped by customer and in time order within one."""

    counts: np.ndarray  # int64 per customer, >= 1
    day: np.ndarray  # int64 per purchase: day index in the window
    cents: np.ndarray  # int64 per purchase, > 0
    quantity: np.ndarray  # int64 per purchase, >= 1
    kind: np.ndarray  # per customer: RETAIL, WHOLESALE or ONE_OFF


def _mixed_purchases(
    rng: np.random.Generator, customers: int, cumulative: np.ndarray, growth: float = 1.0
) -> _Purchases:
    """Purchases of retail, wholesale and one-off customers (see the module docstring)."""
    kinds = _lookup_table(MIXED_KIND_SHARES, np.arange(len(MIXED_KIND_SHARES), dtype=np.int8))
    kind = _sample_table(rng, kinds, customers)
    # First purchases are staggered over the window on the seasonal clock, as for btyd.
    birth = _arrivals(rng.uniform(0.0, 1.0, customers), growth) * cumulative[-1]
    retail = np.flatnonzero(kind == RETAIL)
    wholesale = np.flatnonzero(kind == WHOLESALE)
    one_off = np.flatnonzero(kind == ONE_OFF)

    # Retail: Poisson purchases on the seasonal clock until an exponential lifetime ends.
    segment, rate = _retail_rates(rng, len(retail))
    lifetime = rng.exponential(RETAIL_LIFETIME_MEAN_DAYS[segment])
    active = np.minimum(lifetime, cumulative[-1] - birth[retail])
    retail_counts = rng.poisson(rate * active) + 1
    retail_clock = _spread_events(
        rng, retail_counts, np.zeros(len(retail), np.int64), birth[retail], active
    )

    # Wholesale: a regular cycle on the calendar (no seasonality) until the lifetime ends.
    wholesale_counts, wholesale_day = _cycle_days(
        rng, _clock_to_calendar(birth[wholesale], cumulative), days=len(cumulative) - 1
    )

    counts = np.ones(customers, dtype=np.int64)
    counts[retail] = retail_counts
    counts[wholesale] = wholesale_counts
    event_kind = np.repeat(kind, counts)
    day = np.empty(len(event_kind), dtype=np.int64)
    day[event_kind == RETAIL] = _clock_to_day(retail_clock, cumulative)
    day[event_kind == WHOLESALE] = wholesale_day
    day[event_kind == ONE_OFF] = _clock_to_day(birth[one_off], cumulative)

    # Order values: a personal level (log-normal by kind; retail's falls with the purchase
    # rate) that every order shares, the first included, growing with tenure.
    level = np.log(MIXED_ORDER_MEDIAN[kind]) + MIXED_CUSTOMER_SIGMA[kind] * rng.standard_normal(
        customers
    )
    level[retail] += RETAIL_RATE_ELASTICITY * np.log(rate / RETAIL_REFERENCE_RATE_PER_DAY)
    starts = np.cumsum(counts) - counts
    tenure_years = (day - np.repeat(day[starts], counts)) / 365.25
    log_value = (
        np.repeat(level, counts)
        + MIXED_GROWTH_PER_YEAR[event_kind] * tenure_years
        + MIXED_ORDER_SIGMA[event_kind] * rng.standard_normal(len(day))
    )
    cents = np.clip(np.rint(np.exp(log_value) * 100), MIN_ORDER_CENTS, MAX_ORDER_CENTS)

    quantity = _sample_table(rng, _quantity_table(), len(day))
    quantity[event_kind == WHOLESALE] *= WHOLESALE_CASE_SIZE
    return _Purchases(counts, day, cents.astype(np.int64), quantity, kind)


def _retail_rates(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Segment (0 occasional, 1 frequent) and purchase rate per day: a mix of two log-normals."""
    segment = (rng.random(n) < RETAIL_FREQUENT_SHARE).astype(np.intp)
    rate = RETAIL_RATE_MEDIAN_PER_DAY[segment] * np.exp(RETAIL_RATE_SIGMA * rng.standard_normal(n))
    return segment, rate


def _cycle_days(
    rng: np.random.Generator, first_day: np.ndarray, days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Purchases per wholesale customer and their day indices, grouped by customer: the first
    on first_day (fractional), then one per cycle (jittered) until the lifetime or the window
    ends."""
    cycle = rng.uniform(*WHOLESALE_CYCLE_DAYS, len(first_day))
    active = np.minimum(
        rng.exponential(WHOLESALE_LIFETIME_MEAN_DAYS, len(first_day)), days - first_day
    )
    # Enough slots for the shortest possible gaps to cover the active span; the rest are dropped.
    shortest = 1 - WHOLESALE_JITTER_LIMIT * WHOLESALE_CYCLE_JITTER
    slots = (active / (cycle * shortest)).astype(np.int64) + 1
    starts = np.cumsum(slots) - slots
    owner = np.repeat(np.arange(len(first_day)), slots)
    jitter = np.clip(
        rng.standard_normal(len(owner)), -WHOLESALE_JITTER_LIMIT, WHOLESALE_JITTER_LIMIT
    )
    gaps = cycle[owner] * (1 + WHOLESALE_CYCLE_JITTER * jitter)
    gaps[starts] = 0.0
    running = np.cumsum(gaps)
    offset = running - np.repeat(running[starts], slots)
    keep = offset < np.repeat(active, slots)
    keep[starts] = True
    counts = np.bincount(owner[keep], minlength=len(first_day)).astype(np.int64)
    day = (np.repeat(first_day, slots) + offset)[keep].astype(np.int64)
    return counts, np.minimum(day, days - 1)


def _clock_to_calendar(clock: np.ndarray, cumulative: np.ndarray) -> np.ndarray:
    """Fractional calendar day for each seasonal-clock time."""
    day = _clock_to_day(clock, cumulative)
    within = (clock - cumulative[day]) / (cumulative[day + 1] - cumulative[day])
    return day + np.clip(within, 0.0, 1.0)


def _clock_to_day(clock: np.ndarray, cumulative: np.ndarray) -> np.ndarray:
    """Calendar day index for each seasonal-clock time (inverse of the cumulative intensity).

    A uniform grid much finer than the shortest day turns the binary search into a table
    lookup plus one correction: each grid cell contains at most one day boundary.
    """
    days = len(cumulative) - 1
    shortest = float(np.diff(cumulative).min())
    cells = int(np.ceil(cumulative[-1] / shortest)) * 2
    cell_width = cumulative[-1] / cells
    first_day_of_cell = np.searchsorted(cumulative, np.arange(cells + 1) * cell_width, "right") - 1
    first_day_of_cell = np.clip(first_day_of_cell, 0, days - 1)
    cell = np.clip((clock / cell_width).astype(np.int64), 0, cells)
    day = first_day_of_cell[cell]
    day += clock >= cumulative[np.minimum(day + 1, days)]
    return np.minimum(day, days - 1)


def _sample_table(rng: np.random.Generator, table: np.ndarray, n: int) -> np.ndarray:
    """Draw from a discrete distribution encoded as a lookup table (much faster than
    searchsorted or rng.choice for tens of millions of draws)."""
    return table[rng.integers(0, len(table), n, dtype=np.int32)]


def _lookup_table(weights: np.ndarray, values: np.ndarray, resolution: int = 4096) -> np.ndarray:
    """Each value repeated in proportion to its weight, to 1/resolution precision."""
    slots = np.rint(weights / weights.sum() * resolution).astype(np.int64)
    return np.repeat(values, slots)


def _hour_table() -> np.ndarray:
    return _lookup_table(HOUR_WEIGHTS, np.arange(24, dtype=np.int64))


def _quantity_table() -> np.ndarray:
    quantities = np.arange(1, 13, dtype=np.int64)
    return _lookup_table(QUANTITY_P * (1 - QUANTITY_P) ** (quantities - 1), quantities)


def _time_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds after midnight following the intraday demand profile."""
    hour = _sample_table(rng, _hour_table(), n)
    return hour * 3600 + rng.integers(0, 3600, n, dtype=np.int32)


def _customer_spend_means(rng: np.random.Generator, customers: int) -> np.ndarray:
    # Gamma-gamma: the per-order gamma rate is itself gamma, so customer means are
    # inverse-gamma with a heavy right tail of big spenders and mean SPEND_MEAN.
    scale = SPEND_MEAN * (SPEND_SHAPE - 1)
    return scale / rng.gamma(SPEND_SHAPE, 1.0, customers)


def _order_cents(
    rng: np.random.Generator, spend_mean: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    cents_scale = np.repeat(spend_mean * (100 / ORDER_SHAPE), counts)
    cents = rng.standard_gamma(ORDER_SHAPE, len(cents_scale), dtype=np.float32) * cents_scale
    np.rint(cents, out=cents)
    return np.clip(cents, MIN_ORDER_CENTS, MAX_ORDER_CENTS).astype(np.int64)


def _chronological_order(seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stable argsort of non-negative seconds, and the sorted values.

    Packing (seconds, index) into one int64 and sorting values is ~15x faster than
    np.argsort on 10M rows, and ties keep their input order, so the result is deterministic.
    """
    index_bits = max(1, len(seconds).bit_length())
    if int(seconds.max(initial=0)).bit_length() + index_bits > 62:
        order = np.argsort(seconds, kind="stable")
        return order, seconds[order]
    keys = np.sort((seconds.astype(np.int64) << index_bits) | np.arange(len(seconds)))
    return keys & ((1 << index_bits) - 1), keys >> index_bits


@dataclass(frozen=True)
class _Refunds:
    source: np.ndarray  # index of the refunded purchase
    delay_days: np.ndarray  # >= 1, so a refund is always strictly after its purchase
    cents: np.ndarray  # positive; negated when written
    quantity: np.ndarray


def _refunds(
    rng: np.random.Generator,
    day: np.ndarray,
    cents: np.ndarray,
    quantity: np.ndarray,
    last_day: int,
) -> _Refunds:
    candidate = np.flatnonzero(rng.random(len(day)) < REFUND_PROBABILITY)
    delay = rng.geometric(1 / REFUND_MEAN_DELAY_DAYS, len(candidate)).astype(np.int64)
    # Refunds that would land after the window simply have not happened yet.
    keep = day[candidate] + delay <= last_day
    source, delay = candidate[keep], delay[keep]

    full = rng.random(len(source)) < REFUND_FULL_PROBABILITY
    share = rng.uniform(0.1, 0.9, len(source))
    partial_cents = np.maximum(np.rint(cents[source] * share).astype(np.int64), 1)
    partial_quantity = rng.integers(1, quantity[source] + 1)
    return _Refunds(
        source=source,
        delay_days=delay,
        cents=np.where(full, cents[source], partial_cents),
        quantity=np.where(full, quantity[source], partial_quantity),
    )


def _epoch_seconds(day: dt.date) -> int:
    return int(np.datetime64(day, "s").astype(np.int64))


# --- formatting -------------------------------------------------------------------------------


def _transaction_id_width(rows: int) -> int:
    return max(TRANSACTION_ID_WIDTH, len(str(rows)))


def _digits(values: np.ndarray, width: int, prefix: str = "") -> pa.Array:
    """Zero-padded decimal strings built straight into an Arrow buffer.

    Arrow's cast + lpad take seconds for 10M values; filling a fixed-width byte matrix
    digit by digit is several times faster.
    """
    n = len(values)
    head = prefix.encode("ascii")
    total = len(head) + width
    columns = np.empty((total, n), dtype=np.uint8)
    columns[: len(head)] = np.frombuffer(head, dtype=np.uint8)[:, None]
    dtype = np.uint32 if n == 0 or values.max() < 2**32 else np.uint64
    remaining = values.astype(dtype)
    quotient = np.empty_like(remaining)
    for row in range(total - 1, len(head) - 1, -1):
        np.floor_divide(remaining, 10, out=quotient)
        remaining -= quotient * 10
        np.add(remaining, ord("0"), out=columns[row], casting="unsafe")
        remaining, quotient = quotient, remaining
    data = np.ascontiguousarray(columns.T)
    offsets = np.arange(n + 1, dtype=np.int64) * total
    return pa.Array.from_buffers(TEXT, n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _id_columns(rows: _CleanRows, id_width: int, tid_width: int) -> dict[str, pa.Array]:
    return {
        "transaction_id": _digits(np.arange(1, len(rows.quantity) + 1), tid_width, "T"),
        "customer_id": _digits(rows.customer_number, id_width),
    }


def _timestamps(epoch_seconds: np.ndarray) -> pa.Array:
    return pa.array(epoch_seconds.astype("datetime64[s]"), type=pa.timestamp("s"))


def _typed_table(rows: _CleanRows, id_width: int, tid_width: int) -> pa.Table:
    return pa.table(
        {
            **_id_columns(rows, id_width, tid_width),
            "transaction_date": _timestamps(rows.epoch_seconds),
            "amount": pa.array(rows.amount_cents / 100.0, type=pa.float64()),
            "quantity": pa.array(rows.quantity, type=pa.int64()),
        }
    )


def _text_table(rows: _CleanRows, id_width: int, tid_width: int) -> pa.Table:
    return pa.table(
        {
            **_id_columns(rows, id_width, tid_width),
            "transaction_date": _timestamp_text(rows.epoch_seconds),
            "amount": _amount_text(rows.amount_cents / 100.0),
            "quantity": pc.cast(pa.array(rows.quantity), TEXT),
        }
    )


def _timestamp_text(epoch_seconds: np.ndarray) -> pa.Array:
    return pc.cast(_timestamps(epoch_seconds), TEXT)


def _amount_text(amount: np.ndarray) -> pa.Array:
    # Going through decimal128(18, 2) gives exactly two decimals ("12.50", not "12.5").
    return pc.cast(pc.cast(pa.array(amount, type=pa.float64()), pa.decimal128(18, 2)), TEXT)


def _to_frame(table: pa.Table) -> pd.DataFrame:
    # With TEXT columns the str columns wrap the Arrow data as is, and split_blocks avoids
    # copying the numeric columns into one consolidated block.
    return table.select(list(COLUMNS)).to_pandas(split_blocks=True)


def _customer_frame(kind: np.ndarray, id_width: int) -> pd.DataFrame:
    customer_number = np.arange(1, len(kind) + 1, dtype=np.int64)
    kinds = pa.DictionaryArray.from_arrays(pa.array(kind), pa.array(KINDS, type=TEXT))
    return pa.table({"customer_id": _digits(customer_number, id_width), "kind": kinds}).to_pandas(
        split_blocks=True
    )


def _defect_frame(row_numbers: np.ndarray, reasons: list[str] | np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source_row_number": pd.Series(row_numbers, dtype="int64"),
            "reason": pd.Series(reasons, dtype="str"),
        }
    )


# --- defects ----------------------------------------------------------------------------------


def _defect_count(clean_rows: int, dirty_share: float) -> int:
    """The D with D == round(dirty_share * (clean_rows + D)): defects are extra rows, and the
    share is of the final file."""
    defects = round(dirty_share * clean_rows / (1 - dirty_share))
    # f(D) = round(F * (N + D)) - D only ever steps by 0 or -1, so this walk terminates.
    while (gap := round(dirty_share * (clean_rows + defects)) - defects) != 0:
        defects += 1 if gap > 0 else -1
    return defects


def _inject_defects(
    rng: np.random.Generator,
    clean: pa.Table,
    count: int,
    end_date: dt.date,
    tid_width: int,
) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """Interleave `count` defective rows into the clean text table.

    Returns the final table, the 0-based file positions of the defect rows (sorted) and their
    reason codes.
    """
    clean_count = clean.num_rows
    total = clean_count + count
    positions = np.sort(rng.choice(total, size=count, replace=False)).astype(np.int64)
    # The k-th defect (in file order) has exactly k defects, hence pos - k clean rows, before it.
    clean_before = positions - np.arange(count)

    reason_codes = rng.permutation(np.resize(np.arange(len(DEFECT_REASONS)), count))
    duplicate = DEFECT_REASONS.index("duplicate_transaction_id")
    # A duplicate needs an earlier clean row to copy; at the very top of the file there is none.
    orphan = (reason_codes == duplicate) & (clean_before == 0)
    reason_codes[orphan] = rng.integers(0, duplicate, int(orphan.sum()))

    # Copies come from recent rows (double submissions); other defects borrow a neighbouring
    # clean row's values so the file stays roughly chronological.
    lookback = np.minimum(rng.geometric(0.2, count) - 1, np.maximum(clean_before - 1, 0))
    neighbour = np.clip(clean_before - 1 + rng.integers(0, 2, count), 0, clean_count - 1)
    template = np.where(reason_codes == duplicate, clean_before - 1 - lookback, neighbour)

    defects = _defect_rows(
        rng, clean.take(template), reason_codes, clean_count, end_date, tid_width
    )
    order = np.empty(total, dtype=np.int64)
    is_defect = np.zeros(total, dtype=bool)
    is_defect[positions] = True
    order[~is_defect] = np.arange(clean_count)
    order[positions] = clean_count + np.arange(count)
    table = pa.concat_tables([clean, defects]).take(order)
    return table, positions, np.asarray(DEFECT_REASONS, dtype=object)[reason_codes]


def _defect_rows(
    rng: np.random.Generator,
    template: pa.Table,
    reason_codes: np.ndarray,
    clean_count: int,
    end_date: dt.date,
    tid_width: int,
) -> pa.Table:
    """Corrupt exactly one field of each template row, as its reason code says."""
    count = template.num_rows

    def reason(name: str) -> pa.Array:
        return pa.array(reason_codes == DEFECT_REASONS.index(name))

    def pick(choices: tuple[str, ...]) -> pa.Array:
        return pa.array(choices, type=TEXT).take(rng.integers(0, len(choices), count))

    empty = pa.array(np.full(count, ""), type=TEXT)
    fresh_ids = _digits(np.arange(clean_count + 1, clean_count + count + 1), tid_width, "T")
    transaction_id = pc.if_else(
        reason("duplicate_transaction_id"), template["transaction_id"], fresh_ids
    )
    customer_id = pc.if_else(reason("missing_customer_id"), empty, template["customer_id"])

    late = _epoch_seconds(end_date + dt.timedelta(days=1)) + (
        rng.integers(0, 365, count) * SECONDS_PER_DAY + rng.integers(0, SECONDS_PER_DAY, count)
    )
    date = pc.if_else(
        reason("unparsable_transaction_date"),
        pick(BAD_DATES),
        pc.if_else(reason("after_as_of_date"), _timestamp_text(late), template["transaction_date"]),
    )

    amount = template["amount"].combine_chunks()
    # 1.6x to 1000x the bound, mostly positive: clearly wrong, yet valid numbers.
    huge = (
        AMOUNT_BOUND * 10 ** rng.uniform(0.2, 3.0, count) * np.where(rng.random(count) < 0.3, -1, 1)
    )
    amount = pc.if_else(
        reason("missing_amount"),
        empty,
        pc.if_else(
            reason("non_numeric_amount"),
            _non_numeric_amounts(rng, amount),
            pc.if_else(reason("amount_out_of_bounds"), _amount_text(np.rint(huge)), amount),
        ),
    )
    quantity = pc.if_else(
        reason("non_numeric_quantity"), pick(BAD_QUANTITIES), template["quantity"]
    )
    return pa.table(
        {
            "transaction_id": transaction_id,
            "customer_id": customer_id,
            "transaction_date": date,
            "amount": amount,
            "quantity": quantity,
        }
    )


def _non_numeric_amounts(rng: np.random.Generator, amount: pa.Array) -> pa.Array:
    """Plausible-looking but unparsable renderings: decimal comma, currency sign or unit, junk."""
    variants = [
        pc.replace_substring(amount, ".", ","),
        pc.binary_join_element_wise(_text("$"), amount, _text("")),
        pc.binary_join_element_wise(amount, _text(" EUR"), _text("")),
        pa.array(np.full(len(amount), "abc"), type=TEXT),
    ]
    which = rng.integers(0, len(variants), len(amount))
    result = variants[-1]
    for index, variant in enumerate(variants[:-1]):
        result = pc.if_else(pa.array(which == index), variant, result)
    return result


def _text(value: str) -> pa.Scalar:
    return pa.scalar(value, type=TEXT)


# --- writing ----------------------------------------------------------------------------------


def _csv_ready(table: pa.Table) -> pa.Table:
    """Fix the CSV rendering of typed columns: whole-second timestamps, two-decimal amounts."""
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_timestamp(field.type):
            column = pc.cast(column, pa.timestamp("s"), safe=False)
        elif field.name == "amount" and pa.types.is_floating(field.type):
            column = pc.cast(column, pa.decimal128(18, 2))
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _write_csv(table: pa.Table, path: Path) -> None:
    # Unquoted output is smaller and is all clean data needs; text with commas or quotes
    # (dirty amounts like "12,50") is rejected by Arrow, so fall back to quoting strings.
    try:
        _write_csv_with(table, path, quoting="none")
    except pa.ArrowInvalid:
        _write_csv_with(table, path, quoting="needed")


def _write_csv_with(table: pa.Table, path: Path, quoting: str) -> None:
    """Render slices of the table on all cores, then write them out in order.

    Arrow's CSV writer is single-threaded but releases the GIL; at most a few slices are
    held in memory at once.
    """
    options = pa_csv.WriteOptions(include_header=False, quoting_style=quoting)

    def render(offset: int) -> pa.Buffer:
        sink = pa.BufferOutputStream()
        pa_csv.write_csv(table.slice(offset, CSV_SLICE_ROWS), sink, options)
        return sink.getvalue()

    workers = os.cpu_count() or 1
    offsets = iter(range(0, table.num_rows, CSV_SLICE_ROWS))
    with path.open("wb") as out, ThreadPoolExecutor(workers) as pool:
        out.write(_csv_header(table.column_names))
        pending = deque(pool.submit(render, offset) for offset in islice(offsets, 2 * workers))
        while pending:
            out.write(pending.popleft().result())
            pending.extend(pool.submit(render, offset) for offset in islice(offsets, 1))


def _csv_header(names: list[str]) -> bytes:
    # Arrow always quotes header names; plain names read better and match the data rows.
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow(names)
    return line.getvalue().encode()
