"""Var max_training_rows: above it, training examples are a stable sample of whole customers."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import dbt_runner

CAP = 8000
SELECT = ("--select", "+int_training_examples_labelled")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple:
    folder = tmp_path_factory.mktemp("sample")
    run = dbt_runner(Path(folder))
    whole = run("run", *SELECT, variables={"max_training_rows": 0}, database="whole")
    capped = run("run", *SELECT, variables={"max_training_rows": CAP}, database="capped")
    again = run("run", *SELECT, variables={"max_training_rows": CAP}, database="again")
    for result in (whole, capped, again):
        assert result.returncode == 0, result.output
    return whole, capped, again


def production_examples(result) -> dict[str, int]:
    return dict(
        result.query(
            "select customer_id, count(*) from int_training_examples_labelled"
            " where purpose = 'production' group by customer_id"
        )
    )


def test_the_sample_is_about_the_cap_in_size(runs) -> None:
    whole, capped, _ = runs
    total = sum(production_examples(whole).values())
    kept = sum(production_examples(capped).values())
    assert total > 2 * CAP  # the sample data is big enough for the cap to bite
    # Customers are kept by a hash of their id, so the count is near the cap, not on it.
    assert 0.8 * CAP <= kept <= 1.2 * CAP


def test_sampled_customers_keep_every_cutoff_and_reruns_keep_the_same_ones(runs) -> None:
    whole, capped, again = runs
    everyone = production_examples(whole)
    sampled = production_examples(capped)
    assert sampled == {customer: everyone[customer] for customer in sampled}
    assert production_examples(again) == sampled
