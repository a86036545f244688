"""Progress lines: plain lines in a log, one line rewritten on a terminal, and the
long work (training, scoring) reporting through them."""

from __future__ import annotations

import datetime as dt
import io
import re

import pyarrow as pa
from test_training_and_scoring import (
    registered_model,
    scoring_features,
    train,
    training_examples,
)

from clv import progress
from clv.progress import Progress
from clv.scoring import score_reader


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_plain_lines_and_a_terminal_one_line_rewritten() -> None:
    log = io.StringIO()
    shown = Progress("scoring", 300, "customers", stream=log, every=0)
    for done in (100, 200, 300):
        shown.advance(done)
    shown.done()
    lines = log.getvalue().splitlines()
    assert [re.sub(r" \(\d+ s\)", "", line) for line in lines] == [
        "  scoring: 100 of 300 customers",
        "  scoring: 200 of 300 customers",
        "  scoring: 300 of 300 customers",
    ]

    terminal = Terminal()
    shown = Progress("scoring", None, "customers", stream=terminal, every=0)
    shown.advance(5)
    shown.done()
    assert terminal.getvalue().count("\r") == 2 and terminal.getvalue().endswith("\n")
    assert "\n" not in terminal.getvalue()[:-1]  # one line, rewritten


def test_a_log_is_not_flooded() -> None:
    log = io.StringIO()
    shown = Progress("training", 1000, "rounds", stream=log)  # a log: every 15 s at most
    for done in range(1000):
        shown.advance(done)
    shown.done()
    assert log.getvalue() == ""


def test_training_and_scoring_say_how_far_they_are(monkeypatch, capsys) -> None:
    monkeypatch.setattr(progress, "LOG_SECONDS", 0.0)
    result = train(training_examples())
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(re.match(r"  training, 5 boosters on 800 examples: ", ln) for ln in lines)
    counts = [int(re.search(r": ([\d,]+) of", line).group(1)) for line in lines]
    # Every round of the five boosters, one after the other: the patience of early
    # stopping (30) never runs out in 30 rounds.
    assert counts == list(range(1, 5 * 30 + 1))
    assert len(result.boosters) == 5
    assert "of 150 rounds at most" in lines[-1]


def test_scoring_says_how_many_customers_are_done(monkeypatch, capsys) -> None:
    _, model = registered_model()
    capsys.readouterr()
    monkeypatch.setattr(progress, "LOG_SECONDS", 0.0)
    features = pa.Table.from_pandas(scoring_features(300), preserve_index=False)

    def reader() -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(features.schema, features.to_batches(100))

    score_reader(model, reader, dt.datetime(2025, 7, 1), customers=300).read_all()
    lines = [re.sub(r" \(\d+ s\)", "", line) for line in capsys.readouterr().err.splitlines()]
    assert lines == [
        f"  scoring with {model.model_version}: {done} of 300 customers" for done in (100, 200, 300)
    ]
