"""Every dbt var is checked before dbt starts: a wrong type, a quote or a semicolon is either
refused in one sentence naming the var, or kept as the text it is (the SQL quotes it:
test_dbt_input.test_quotes_and_semicolons_in_paths_columns_and_formats_stay_data)."""

from __future__ import annotations

import argparse

import pytest
import yaml

from clv import settings
from clv.run import PROJECT_DIR, RunError, dbt_vars

DEFAULTS = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())["vars"]

# Vars whose value is free text that reaches SQL as a quoted literal or identifier.
TEXT_VARS = {
    "transactions_path",
    "customer_id_column",
    "transaction_date_column",
    "amount_column",
    "quantity_column",
    "transaction_id_column",
    "unit_price_column",
    "order_id_column",
    "model_version",
    "currency",
}
# A wrong type for each of the other vars, as YAML would hand it over.
WRONG_TYPES = {
    "transaction_date_format": 12,
    "csv_delimiter": 1,
    "decimal_separator": ";",
    "thousands_separator": "_",
    "currency_symbol": "12",
    "input_encoding": "cp1252",
    "max_line_bytes": "2 MB",
    "amount_min": "0 EUR",
    "amount_max": True,
    "reject_exact_duplicate_rows": "yes please",
    "missing_customer_id_values": "NULL",
    "as_of_date": "2024-02-30",
    "horizon_days": "abc",
    "training_cutoffs": 2.5,
    "training_cutoff_step_days": 0,
    "min_training_history_days": -1,
    "min_label_window_days": None,
    "calibration_window_days": 0,
    "seasonal_level": "in winter",
    "season_years": 0,
    "quantiles": [0.5, 1.5],
    "num_threads": -2,
    "max_training_rows": "all",
    "report_top_customers": 0,
    "prediction_drivers": "sometimes",
}


def test_every_project_var_has_a_rule() -> None:
    assert set(settings.RULES) == set(DEFAULTS)
    assert set(WRONG_TYPES) | TEXT_VARS == set(DEFAULTS)


def test_every_default_passes_its_own_rule() -> None:
    assert settings.check_vars(dict(DEFAULTS), DEFAULTS).keys() == DEFAULTS.keys()


@pytest.mark.parametrize("name", sorted(WRONG_TYPES))
def test_a_wrong_type_is_refused_naming_the_var(name: str) -> None:
    with pytest.raises(settings.SettingsError, match=rf"^the var {name} must be .*, got "):
        settings.check_vars({name: WRONG_TYPES[name]}, DEFAULTS)


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_a_quote_and_a_semicolon_are_refused_or_kept_as_text(name: str) -> None:
    hostile = "x'; drop table customer_predictions; --\""
    if name in TEXT_VARS:
        assert settings.check_vars({name: hostile}, DEFAULTS) == {name: hostile}
    elif name == "transaction_date_format":
        assert settings.check_vars({name: "%Y'%m;%d"}, DEFAULTS) == {name: "%Y'%m;%d"}
    elif name == "missing_customer_id_values":
        assert settings.check_vars({name: [hostile]}, DEFAULTS) == {name: [hostile]}
    else:
        with pytest.raises(settings.SettingsError, match=rf"^the var {name} must be "):
            settings.check_vars({name: hostile}, DEFAULTS)


def test_an_unknown_var_is_refused_with_the_closest_name() -> None:
    with pytest.raises(settings.SettingsError, match=r"unknown var 'horizon_day' \(did you mean"):
        settings.check_vars({"horizon_day": 30}, DEFAULTS)
    # --vars '{amount_column:total}': YAML's one name with no value, not a typo.
    with pytest.raises(
        settings.SettingsError,
        match=r"'amount_column:total': YAML reads a colon with no space after it as part of"
        r" the name; write \{amount_column: total\}$",
    ):
        settings.check_vars(yaml.safe_load("{amount_column:total}"), DEFAULTS)


def test_bounds_are_checked_against_the_defaults_too() -> None:
    with pytest.raises(settings.SettingsError, match="amount_min .5000000. must not be above"):
        settings.check_vars({"amount_min": 5_000_000}, DEFAULTS)
    with pytest.raises(settings.SettingsError, match="are both ',': one mark cannot be both"):
        settings.check_vars({"decimal_separator": ",", "thousands_separator": ","}, DEFAULTS)


def test_values_are_normalised_for_dbt() -> None:
    import datetime as dt

    assert settings.check_vars(
        {"as_of_date": dt.date(2025, 3, 1), "input_encoding": "UTF8", "quantiles": [0.9, 0.1]},
        DEFAULTS,
    ) == {"as_of_date": "2025-03-01", "input_encoding": "utf-8", "quantiles": [0.1, 0.9]}


def cli_args(**overrides) -> argparse.Namespace:
    values = {"input": "sample_data/transactions.csv", "vars": "{}", "as_of": None}
    return argparse.Namespace(**{**values, "horizon_days": None, **overrides})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"horizon_days": 0}, "--horizon-days must be a whole number of at least 1, got 0"),
        (
            {"vars": "{horizon_days: 0}"},
            "the var horizon_days must be a whole number of at least 1",
        ),
        ({"as_of": "2025-13-01"}, "--as-of must be a date like 2026-06-30, got '2025-13-01'"),
        ({"vars": "{as_of_date: 2025-02-30}"}, "--vars is not valid YAML .day is out of range"),
        ({"vars": "{as_of_date: '2025-02-30'}"}, "the var as_of_date must be a date like"),
    ],
)
def test_a_flag_and_its_var_share_one_rule(overrides: dict, message: str) -> None:
    with pytest.raises(RunError, match=f"^{message}"):
        dbt_vars(cli_args(**overrides))


def test_a_flag_wins_over_its_var() -> None:
    variables = dbt_vars(cli_args(vars="{horizon_days: 30}", horizon_days=60))
    assert variables["horizon_days"] == 60
