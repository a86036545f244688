"""The dbt vars `clv run` passes, each checked before dbt starts.

A flag and the var it sets share one rule (`--horizon-days 0` and
`--vars '{horizon_days: 0}'` are refused alike), and every refusal is one
sentence naming the flag or var, what it must be and what it got. Values are
only checked here; the SQL quotes each string it receives (macros/quoting.sql),
so a quote or a semicolon in a column name or a path stays data.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
from collections.abc import Callable
from typing import Any


class SettingsError(ValueError):
    """A var or flag with a value the pipeline cannot use; the message is for the user."""


Rule = Callable[[str, Any], Any]

ENCODINGS = ("utf-8", "utf-16", "latin-1")


def _shown(value: Any) -> str:
    """A value as the user wrote it in YAML: null, true, 'text', 12."""
    if value is None or isinstance(value, bool):
        return str(value).lower().replace("none", "null")
    return repr(value)


def whole_number(minimum: int) -> Rule:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise SettingsError(
                f"{name} must be a whole number of at least {minimum}, got {_shown(value)}"
            )
        return value

    return check


def number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SettingsError(f"{name} must be a number such as -1000 or 2500.5, got {_shown(value)}")
    return value


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{name} must be true or false, got {_shown(value)}")
    return value


def date_or_none(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise SettingsError(f"{name} must be a date like 2026-06-30, got {_shown(value)}")


def text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"{name} must be a non-empty text, got {_shown(value)}")
    return value


def text_or_none(name: str, value: Any) -> str | None:
    return None if value is None or value == "" else text(name, value)


def date_format(name: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or "%" not in value:
        raise SettingsError(
            f"{name} must be a strptime format such as '%d/%m/%Y', got {_shown(value)}"
        )
    return value


def delimiter(name: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) != 1 or value in '"\r\n':
        raise SettingsError(
            f"{name} must be one character such as ',' or ';' (not a quote or a line break),"
            f" got {_shown(value)}"
        )
    return value


def decimal_separator(name: str, value: Any) -> str:
    if value not in (".", ","):
        raise SettingsError(f"{name} must be '.' or ',', got {_shown(value)}")
    return value


def thousands_separator(name: str, value: Any) -> str | None:
    if value not in (None, ",", ".", " ", "'"):
        raise SettingsError(f"{name} must be null, ',', '.', ' ' or \"'\", got {_shown(value)}")
    return value


def currency_symbol(name: str, value: Any) -> str | None:
    # Digits, signs, marks and spaces belong to the number: a symbol holding one would
    # change what the number reads as.
    if value is not None and (
        not isinstance(value, str)
        or not 0 < len(value) <= 5
        or any(char.isdigit() or char.isspace() or char in "+-.,'\"" for char in value)
    ):
        raise SettingsError(
            f"{name} must be null or the symbol written beside amounts, such as '$', '€' or"
            f" 'CHF' (no digits, signs, marks or spaces), got {_shown(value)}"
        )
    return value


def encoding(name: str, value: Any) -> str:
    normalised = value.strip().lower().replace("_", "-") if isinstance(value, str) else value
    aliases = {"utf8": "utf-8", "utf16": "utf-16", "latin1": "latin-1", "iso-8859-1": "latin-1"}
    normalised = aliases.get(normalised, normalised)
    if normalised not in ENCODINGS:
        raise SettingsError(f"{name} must be one of {', '.join(ENCODINGS)}, got {_shown(value)}")
    return normalised


def text_list(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SettingsError(
            f"{name} must be a list of texts such as ['NULL', 'N/A'], got {_shown(value)}"
        )
    return value


def quantile_levels(name: str, value: Any) -> list[float]:
    levels = value if isinstance(value, list) else None
    if (
        not levels
        or any(isinstance(level, bool) or not isinstance(level, int | float) for level in levels)
        or not all(0 < level < 1 for level in levels)
        or len(set(levels)) != len(levels)
    ):
        raise SettingsError(
            f"{name} must be a list of distinct levels between 0 and 1 such as [0.1, 0.5, 0.9],"
            f" got {_shown(value)}"
        )
    return sorted(float(level) for level in levels)


RULES: dict[str, Rule] = {
    "transactions_path": text,
    "customer_id_column": text,
    "transaction_date_column": text,
    "amount_column": text,
    "quantity_column": text_or_none,
    "transaction_id_column": text_or_none,
    "unit_price_column": text_or_none,
    "order_id_column": text_or_none,
    "transaction_date_format": date_format,
    "csv_delimiter": delimiter,
    "decimal_separator": decimal_separator,
    "thousands_separator": thousands_separator,
    "currency_symbol": currency_symbol,
    "input_encoding": encoding,
    "max_line_bytes": whole_number(1024),
    "amount_min": number,
    "amount_max": number,
    "reject_exact_duplicate_rows": boolean,
    "missing_customer_id_values": text_list,
    "as_of_date": date_or_none,
    "horizon_days": whole_number(1),
    "training_cutoffs": whole_number(1),
    "training_cutoff_step_days": whole_number(1),
    "min_training_history_days": whole_number(1),
    "min_label_window_days": whole_number(1),
    "calibration_window_days": whole_number(1),
    "seasonal_level": boolean,
    "season_years": whole_number(1),
    "quantiles": quantile_levels,
    "num_threads": whole_number(0),
    "max_training_rows": whole_number(0),
    "model_version": text_or_none,
    "report_top_customers": whole_number(1),
    "prediction_drivers": boolean,
    "currency": text_or_none,
}

FLAGS = {"as_of_date": "--as-of", "horizon_days": "--horizon-days"}


def check_value(name: str, value: Any, source: str | None = None) -> Any:
    """One var's value, normalised; source names it in the message (a flag or 'the var X')."""
    return RULES[name](source or f"the var {name}", value)


def unknown_var(name: Any, value: Any) -> str:
    """Why a name is no var: the closest known one, or YAML's missing space."""
    before, colon, after = str(name).partition(":")
    if colon and value is None:
        # YAML reads {horizon_days:30} as one name, 'horizon_days:30', with no value.
        return (
            f"unknown var {name!r}: YAML reads a colon with no space after it as part of the"
            f" name; write {{{before.strip()}: {after.strip()}}}"
        )
    close = difflib.get_close_matches(str(name), RULES, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown var {name!r}{hint}; the vars are listed in docs/input.md"


def check_vars(variables: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The given vars, checked and normalised; unknown names are refused with the closest
    known one. Rules that tie two vars together also see the defaults (dbt_project.yml)."""
    checked = {}
    for name, value in variables.items():
        if name not in RULES:
            raise SettingsError(unknown_var(name, value))
        checked[name] = check_value(name, value)
    merged = {**defaults, **checked}
    low, high = merged.get("amount_min"), merged.get("amount_max")
    if low is not None and high is not None and low > high:
        raise SettingsError(f"the var amount_min ({low}) must not be above amount_max ({high})")
    if merged.get("thousands_separator") == merged.get("decimal_separator"):
        raise SettingsError(
            f"the vars thousands_separator and decimal_separator are both"
            f" {merged['decimal_separator']!r}: one mark cannot be both"
        )
    return checked
