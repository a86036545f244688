"""clv.dynamodb_publish against a real dynalite (a DynamoDB-compatible server) on loopback.

The server is started by tests/python/dynalite.py; nothing here mocks it. Faults are injected
at the client boundary only (a wrapper that withholds part of a batch, or refuses a call, the
way a throttled table does), so every item still goes to the real server.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from botocore.exceptions import ClientError
from dynalite import Dynalite, DynaliteMissing, command, free_port

from clv import dynamodb_publish
from clv.dynamodb_publish import (
    DynamoPublishError,
    connect,
    publish_predictions,
    read_forecast,
    table_names,
)

FIELDS = [
    "customer_id",
    "as_of_date",
    "horizon_days",
    "expected_spend",
    "spend_p10",
    "spend_p50",
    "spend_p90",
    "prob_purchase",
    "model_version",
    "scored_at",
]
NUMBERS = {"horizon_days", "expected_spend", "spend_p10", "spend_p50", "spend_p90", "prob_purchase"}
SECRET = "fake-secret-key-never-in-a-message"
REGION = "eu-west-1"
SRC = Path(dynamodb_publish.__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- dynalite


def start_dynalite() -> Dynalite:
    """`make test` installs node and dynalite: a missing one fails the test, saying which."""
    try:
        command()
    except DynaliteMissing as missing:
        sentence = f"dynalite cannot run: {missing}"
    else:
        return Dynalite().start()
    pytest.fail(sentence, pytrace=False)  # outside the except: no "During handling of" echo


@pytest.fixture(scope="module")
def server() -> Iterator[Dynalite]:
    started = start_dynalite()
    yield started
    started.close()


@pytest.fixture
def own_server() -> Iterator[Dynalite]:
    """A server of the test's own, for tests that pause or restart it."""
    started = start_dynalite()
    yield started
    started.close()


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials and a region; no profile, config file or metadata service."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFAKEFORTESTS")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """Tables of their own per test on the shared server."""
    return re.sub(r"[^A-Za-z0-9]+", "-", request.node.name.removeprefix("test_"))[:60]


@pytest.fixture
def client(server: Dynalite, monkeypatch: pytest.MonkeyPatch) -> Any:
    assert server.process is not None
    if server.process.poll() is not None:  # say why, not "could not connect" in every test after
        pytest.fail(f"the shared dynalite died: {server.output()}", pytrace=False)
    # Through the environment, as a deployment configures it: connect() gets no endpoint.
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    return connect()


# ---------------------------------------------------------------------------- data

AS_OF = {"A": dt.date(2024, 3, 31), "B": dt.date(2024, 6, 30), "C": dt.date(2024, 9, 30)}
SCORED_AT = dt.datetime(2024, 7, 1, 2, 3, 4, 567891)


def _spend(tag: str, i: int) -> float:
    # Distinct per run, and decimals with no short binary form, so a mix or a rounding shows.
    return (i + {"A": 0.5, "B": 0.75, "C": 0.125}[tag]) / 3


def prediction_batches(
    tag: str, customers: int, rows_per_batch: int = 1_000, first: int = 0
) -> Iterator[pa.RecordBatch]:
    for start in range(first, first + customers, rows_per_batch):
        ids = range(start, min(start + rows_per_batch, first + customers))
        spend = [_spend(tag, i) for i in ids]
        yield pa.RecordBatch.from_pydict(
            {
                "customer_id": [f"C{i:07d}" for i in ids],
                "as_of_date": pa.array([AS_OF[tag]] * len(ids), pa.date32()),
                "horizon_days": pa.array([90] * len(ids), pa.int32()),
                "expected_spend": spend,
                "spend_p10": [s * 0.1 for s in spend],
                "spend_p50": [s * 0.7 for s in spend],
                "spend_p90": [s * 2.3 for s in spend],
                "prob_purchase": [1 / (i % 9 + 2) for i in ids],
                "model_version": [tag] * len(ids),
                "scored_at": pa.array([SCORED_AT] * len(ids), pa.timestamp("us")),
            }
        )


def expected_forecast(tag: str, i: int) -> dict[str, object]:
    spend = _spend(tag, i)
    return {
        "customer_id": f"C{i:07d}",
        "as_of_date": AS_OF[tag].isoformat(),
        "horizon_days": 90,
        "expected_spend": spend,
        "spend_p10": spend * 0.1,
        "spend_p50": spend * 0.7,
        "spend_p90": spend * 2.3,
        "prob_purchase": 1 / (i % 9 + 2),
        "model_version": tag,
        "scored_at": "2024-07-01T02:03:04.567891",
    }


def check_forecast(forecast: dict | None, i: int) -> str:
    """Assert the forecast is one whole row of one run, floats exact; return the run's tag."""
    assert forecast is not None, f"customer {i} had no item"
    tag = forecast.get("model_version")
    assert tag in AS_OF, forecast
    assert forecast == expected_forecast(tag, i)
    return tag


def scan_run(client: Any, prefix: str, run: str) -> dict[str, dict]:
    """Every raw item of one run, by customer id."""
    forecasts, _ = table_names(prefix)
    pages = client.get_paginator("scan").paginate(
        TableName=forecasts,
        ConsistentRead=True,
        FilterExpression="#run = :run",
        ExpressionAttributeNames={"#run": "run"},
        ExpressionAttributeValues={":run": {"S": run}},
    )
    return {item["customer_id"]["S"]: item for page in pages for item in page["Items"]}


def raw_item(client: Any, prefix: str, customer_id: str, run: str) -> dict | None:
    forecasts, _ = table_names(prefix)
    key = {"customer_id": {"S": customer_id}, "run": {"S": run}}
    return client.get_item(TableName=forecasts, Key=key, ConsistentRead=True).get("Item")


def runs_item(client: Any, prefix: str, run: str) -> dict | None:
    _, runs = table_names(prefix)
    key = {"run": {"S": run}}
    return client.get_item(TableName=runs, Key=key, ConsistentRead=True).get("Item")


def pointer(client: Any, prefix: str) -> str | None:
    item = runs_item(client, prefix, "current")
    return None if item is None else item["version"]["S"]


class Reader(threading.Thread):
    """Polls read_forecast for random customers until stopped (bounded by time)."""

    def __init__(self, prefix: str, customers: int, max_seconds: float = 30.0) -> None:
        super().__init__(daemon=True)
        self.prefix, self.customers, self.max_seconds = prefix, customers, max_seconds
        self.stop = threading.Event()
        self.warmed_up = threading.Event()
        self.seen: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        rng = random.Random(7)
        deadline = time.monotonic() + self.max_seconds
        try:
            reader = connect()  # its own client, through AWS_ENDPOINT_URL like the app
            while not self.stop.is_set() and time.monotonic() < deadline:
                i = rng.randrange(self.customers)
                tag = check_forecast(read_forecast(reader, f"C{i:07d}", self.prefix), i)
                if self.seen and tag != self.seen[-1]:
                    assert (self.seen[-1], tag) == ("A", "B"), "the reader went back to A"
                self.seen.append(tag)
                if len(self.seen) >= 30:
                    self.warmed_up.set()
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            self.warmed_up.set()

    def finish(self) -> list[str]:
        self.stop.set()
        self.join(15)
        if self.error is not None:
            raise self.error
        return self.seen


# ---------------------------------------------------------------------------- tests


def test_publish_writes_every_item_the_runs_item_and_the_pointer(client: Any, prefix: str) -> None:
    result = publish_predictions(
        client,
        prediction_batches("A", 2_500),
        "2024-03-31_mA",
        customers=2_500,
        prefix=prefix,
        metadata={"as_of_date": "2024-03-31", "model_version": "A", "rows": 2_500},
    )
    assert (result.version, result.customers, result.previous_version) == (
        "2024-03-31_mA",
        2_500,
        None,
    )
    items = scan_run(client, prefix, "2024-03-31_mA")
    assert len(items) == 2_500
    for customer_id, item in items.items():
        i = int(customer_id[1:])
        for name, value in expected_forecast("A", i).items():
            kind = "N" if name in NUMBERS else "S"
            assert set(item[name]) == {kind}, (name, item[name])
            # Floats come back exactly: the N string parses to the very same float64.
            assert (float if kind == "N" else str)(item[name][kind]) == value, (name, item)
        assert set(item) == {*FIELDS, "run"}  # no expires_at on a live run
    assert check_forecast(read_forecast(client, "C0000042", prefix), 42) == "A"
    assert read_forecast(client, "C9999999", prefix) is None
    assert read_forecast(client, "", prefix) is None

    current = runs_item(client, prefix, "current")
    assert current is not None and current["version"] == {"S": "2024-03-31_mA"}
    assert "previous_version" not in current and current["flipped_at"]["S"].endswith("Z")
    run = runs_item(client, prefix, "2024-03-31_mA")
    assert run is not None
    assert run["customers"] == {"N": "2500"} and run["status"] == {"S": "published"}
    assert run["columns"] == {"S": ",".join(FIELDS)}
    assert run["as_of_date"] == {"S": "2024-03-31"} and run["rows"] == {"S": "2500"}
    assert run["published_at"]["S"].endswith("Z")


def test_values_are_typed_and_nulls_nan_and_infinity_are_left_out(client: Any, prefix: str) -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "customer_id": ["x1", "x2"],
            "expected_spend": [0.1 + 0.2, None],
            "prob_purchase": [float("nan"), 1e-7],
            "spend_p90": [float("inf"), 1e20],
            "ratio32": pa.array([1 / 3, 2.5], pa.float32()),
            "orders": pa.array([2**62, -3], pa.int64()),
            "price": pa.array([dt.date(2024, 1, 1), None], pa.date32()),
            "is_active": [True, False],
            "segment": pa.array(["gold", "silver"]).dictionary_encode(),
            "note": ["", None],
            "scored_at": pa.array(
                [dt.datetime(2024, 7, 1, 2, 3, 4, 500000, tzinfo=dt.UTC)] * 2,
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    publish_predictions(client, [batch], "v1", prefix=prefix)
    first = raw_item(client, prefix, "x1", "v1")
    assert first == {
        "customer_id": {"S": "x1"},
        "run": {"S": "v1"},
        "expected_spend": {"N": repr(0.1 + 0.2)},
        "ratio32": {"N": "0.33333334"},
        "orders": {"N": str(2**62)},
        "price": {"S": "2024-01-01"},
        "is_active": {"BOOL": True},
        "segment": {"S": "gold"},
        "note": {"S": ""},
        "scored_at": {"S": "2024-07-01T02:03:04.500000Z"},
    }  # NaN and infinity have no N form: left out, like nulls
    assert read_forecast(client, "x2", prefix) == {
        "customer_id": "x2",
        "prob_purchase": 1e-7,
        "spend_p90": 1e20,
        "ratio32": 2.5,
        "orders": -3,
        "is_active": False,
        "segment": "silver",
        "scored_at": "2024-07-01T02:03:04.500000Z",
    }


def test_bad_input_is_refused_with_a_clear_message_and_nothing_switched(
    client: Any, prefix: str
) -> None:
    publish_predictions(client, prediction_batches("A", 10), "A", prefix=prefix)

    def one(**columns: Any) -> list[pa.RecordBatch]:
        return [pa.RecordBatch.from_pydict(columns)]

    ids = one(customer_id=["x"])
    refused: list[tuple[type[Exception], str, Any, str]] = [
        (ValueError, r"no 'customer_id' column .*columns: id, s\)", one(id=["x"], s=[1.0]), "B"),
        (ValueError, "1 rows have a null customer_id", one(customer_id=["x", None]), "B"),
        (ValueError, "1 rows have an empty customer_id", one(customer_id=["x", ""]), "B"),
        (ValueError, "1 customer_id values repeat within one", one(customer_id=["x", "x"]), "B"),
        (TypeError, "'customer_id' must be a string column .*int64", one(customer_id=[1]), "B"),
        (ValueError, r"columns \['run'\] are reserved", one(customer_id=["x"], run=["r"]), "B"),
        (ValueError, "outside the range of a DynamoDB num", one(customer_id=["x"], s=[1e300]), "B"),
        (ValueError, "there are no prediction rows", [], "B"),
        (ValueError, "version 'bad version' must be 1-128 characters", ids, "bad version"),
        (ValueError, "version '' must be", ids, ""),
        (ValueError, "version '-B' must be", ids, "-B"),
        (ValueError, "version 'x{129}' must be", ids, "x" * 129),
        (ValueError, "version 'current' is reserved", ids, "current"),
    ]
    for kind, message, batches, version in refused:
        with pytest.raises(kind, match=message):
            publish_predictions(client, batches, version, prefix=prefix)

    def third_batch_differs() -> Iterator[pa.RecordBatch]:
        yield from prediction_batches("B", 50, rows_per_batch=25)
        yield pa.RecordBatch.from_pydict({"customer_id": ["y", "y"]})

    with pytest.raises(ValueError, match="^batch 3: its columns .* differ from"):
        publish_predictions(client, third_batch_differs(), "B", prefix=prefix)
    with pytest.raises(ValueError, match="table prefix 'a b' must be"):
        publish_predictions(client, prediction_batches("B", 1), "B", prefix="a b")
    with pytest.raises(ValueError, match=r"metadata keys \['customers'\] are reserved"):
        publish_predictions(
            client, prediction_batches("B", 1), "B", prefix=prefix, metadata={"customers": 3}
        )
    assert pointer(client, prefix) == "A"
    assert check_forecast(read_forecast(client, "C0000003", prefix), 3) == "A"


def test_readers_switch_atomically_from_a_to_b(client: Any, prefix: str) -> None:
    customers = 2_000
    publish_predictions(client, prediction_batches("A", customers), "A", prefix=prefix)
    reader = Reader(prefix, customers)
    reader.start()
    assert reader.warmed_up.wait(10)
    result = publish_predictions(client, prediction_batches("B", customers), "B", prefix=prefix)
    deadline = time.monotonic() + 5
    while reader.seen.count("B") < 30 and time.monotonic() < deadline and reader.is_alive():
        time.sleep(0.01)
    seen = reader.finish()
    assert result.previous_version == "A"
    assert "A" in seen and "B" in seen, f"the reader saw {len(seen)} reads: {set(seen)}"
    switch = seen.index("B")
    assert set(seen[:switch]) == {"A"} and set(seen[switch:]) == {"B"}
    assert switch > 30  # the reader was really reading A while B was being written


def test_republishing_the_current_version_is_idempotent(client: Any, prefix: str) -> None:
    publish_predictions(client, prediction_batches("A", 1_500), "A", prefix=prefix)
    before = scan_run(client, prefix, "A")
    pointer_before = runs_item(client, prefix, "current")
    reader = Reader(prefix, 1_500)
    reader.start()
    assert reader.warmed_up.wait(10)
    again = publish_predictions(client, prediction_batches("A", 1_500), "A", prefix=prefix)
    seen = reader.finish()
    assert set(seen) == {"A"}  # never a missing or foreign item during the rerun
    assert (again.previous_version, again.customers) == ("A", 1_500)
    assert scan_run(client, prefix, "A") == before  # same items, still without expires_at
    assert runs_item(client, prefix, "current") == pointer_before  # not even flipped_at moved


def test_previous_run_expires_after_the_grace_and_the_current_run_never(
    client: Any, prefix: str
) -> None:
    # A: customers 0..999; B: 100..1099 (100 left, 100 new); C: the same as B.
    publish_predictions(client, prediction_batches("A", 1_000), "A", prefix=prefix)
    started = time.time()
    result = publish_predictions(
        client, prediction_batches("B", 1_000, first=100), "B", prefix=prefix, grace_seconds=3_600
    )
    assert result.previous_version == "A"
    a_items, b_items = scan_run(client, prefix, "A"), scan_run(client, prefix, "B")
    for i in range(100, 1_000):  # in both runs: the old item expires after the grace
        expires_at = int(a_items[f"C{i:07d}"]["expires_at"]["N"])
        assert started + 3_600 - 1 <= expires_at <= time.time() + 3_600 + 1
    for i in range(100):  # not in B: kept, unreachable (the documented trade-off)
        assert "expires_at" not in a_items[f"C{i:07d}"]
    assert not any("expires_at" in item for item in b_items.values())
    assert len(b_items) == 1_000
    assert check_forecast(read_forecast(client, "C0001050", prefix), 1_050) == "B"
    assert read_forecast(client, "C0000050", prefix) is None  # left in B: gone for readers
    assert "retired_at" in runs_item(client, prefix, "A")
    assert runs_item(client, prefix, "current")["previous_version"] == {"S": "A"}

    first_expiry = int(a_items["C0000500"]["expires_at"]["N"])
    publish_predictions(
        client, prediction_batches("C", 1_000, first=100), "C", prefix=prefix, grace_seconds=7_200
    )
    assert int(raw_item(client, prefix, "C0000500", "B")["expires_at"]["N"]) > started + 7_000
    assert int(raw_item(client, prefix, "C0000500", "A")["expires_at"]["N"]) == first_expiry
    assert "expires_at" not in raw_item(client, prefix, "C0000500", "C")

    # A rollback puts the retired run's items anew: live again, without expires_at.
    rollback = publish_predictions(client, prediction_batches("A", 1_000), "A", prefix=prefix)
    assert rollback.previous_version == "C"
    assert not any("expires_at" in item for item in scan_run(client, prefix, "A").values())
    assert "expires_at" in raw_item(client, prefix, "C0000500", "C")


class FailingExpiries:
    """The real client, but every expiry UpdateItem after the first ``after`` fails."""

    def __init__(self, real: Any, after: int) -> None:
        self.real, self.after = real, after
        self.calls = itertools.count(1)
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def update_item(self, **kwargs: Any) -> dict:
        if "expires_at" in kwargs.get("ExpressionAttributeNames", {}).values():
            with self.lock:
                number = next(self.calls)
            if number > self.after:
                error = {"Error": {"Code": "InternalServerError", "Message": "injected"}}
                raise ClientError(error, "UpdateItem")
        return self.real.update_item(**kwargs)


def test_a_rerun_finishes_a_retirement_that_was_cut_short(
    client: Any, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    publish_predictions(client, prediction_batches("A", 600), "A", prefix=prefix)
    with caplog.at_level(logging.WARNING, logger="clv.dynamodb_publish"):
        cut_short = publish_predictions(
            FailingExpiries(client, after=200),
            prediction_batches("B", 600),
            "B",
            prefix=prefix,
            grace_seconds=3_600,
        )
    assert cut_short.previous_version == "A" and pointer(client, prefix) == "B"  # live anyway
    assert "while retiring run(s) A; version B is live, rerun the publish" in caplog.text
    expiring = {
        customer_id: item["expires_at"]
        for customer_id, item in scan_run(client, prefix, "A").items()
        if "expires_at" in item
    }
    assert 200 <= len(expiring) < 600
    assert "retired_at" not in runs_item(client, prefix, "A")

    rerun = publish_predictions(
        client, prediction_batches("B", 600), "B", prefix=prefix, grace_seconds=7_200
    )
    assert rerun.previous_version == "B" and pointer(client, prefix) == "B"
    a_items = scan_run(client, prefix, "A")
    assert all("expires_at" in item for item in a_items.values())  # the retirement finished
    assert {c: a_items[c]["expires_at"] for c in expiring} == expiring  # no grace extended
    assert "retired_at" in runs_item(client, prefix, "A")
    assert not any("expires_at" in item for item in scan_run(client, prefix, "B").values())


PUBLISH_SCRIPT = """
import sys, time
import pyarrow as pa
from clv.dynamodb_publish import connect, publish_predictions

def paced():
    for start in range(0, {customers}, 250):
        ids = range(start, start + 250)
        time.sleep(0.15)  # slow enough to be killed half way, however fast the machine
        yield pa.RecordBatch.from_pydict({{
            "customer_id": [f"C{{i:07d}}" for i in ids],
            "expected_spend": [i / 3 for i in ids],
            "model_version": ["B"] * len(ids),
        }})

publish_predictions(connect(), paced(), "B", prefix={prefix!r})
print("finished", flush=True)
"""


def test_kill_9_mid_publish_keeps_the_old_run_and_a_rerun_completes(
    client: Any, prefix: str, server: Dynalite
) -> None:
    publish_predictions(client, prediction_batches("A", 1_000), "A", prefix=prefix)
    customers = 3_000
    script = textwrap.dedent(PUBLISH_SCRIPT).format(customers=customers, prefix=prefix)
    env = {**os.environ, "PYTHONPATH": str(SRC)}  # AWS_ENDPOINT_URL and the fake keys too
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while raw_item(client, prefix, "C0000600", "B") is None:  # the third batch is written
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the publish wrote nothing in 30 s"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        output, _ = process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL and b"finished" not in output

    written = scan_run(client, prefix, "B")
    assert 600 <= len(written) < customers  # a partial run, never switched to
    assert pointer(client, prefix) == "A"
    assert runs_item(client, prefix, "B")["status"] == {"S": "writing"}
    for i in range(0, 1_000, 7):
        assert check_forecast(read_forecast(client, f"C{i:07d}", prefix), i) == "A"

    def rows() -> Iterator[pa.RecordBatch]:
        for start in range(0, customers, 1_000):
            ids = range(start, start + 1_000)
            yield pa.RecordBatch.from_pydict(
                {
                    "customer_id": [f"C{i:07d}" for i in ids],
                    "expected_spend": [i / 3 for i in ids],
                    "model_version": ["B"] * len(ids),
                }
            )

    rerun = publish_predictions(client, rows(), "B", customers=customers, prefix=prefix)
    assert (rerun.previous_version, rerun.customers) == ("A", customers)
    assert pointer(client, prefix) == "B"
    assert len(scan_run(client, prefix, "B")) == customers
    assert read_forecast(client, "C0002999", prefix) == {
        "customer_id": "C0002999",
        "expected_spend": 2_999 / 3,
        "model_version": "B",
    }


def test_a_client_cut_off_mid_request_leaves_the_server_serving(
    client: Any, prefix: str, server: Dynalite
) -> None:
    """The kill -9 test above can land mid-request; the shared server must outlive that."""
    publish_predictions(client, prediction_batches("A", 10), "A", prefix=prefix)
    with socket.create_connection(("127.0.0.1", server.port)) as cut_off:
        cut_off.sendall(b'POST / HTTP/1.1\r\nHost: dynamodb\r\nContent-Length: 1000\r\n\r\n{"Table')
        time.sleep(0.2)  # the server has read the headers and waits for the rest of the body
        # Linger 0: close() resets the connection, as the kernel does for a killed process.
        cut_off.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    time.sleep(0.3)
    assert server.process is not None and server.process.poll() is None, server.output()
    assert pointer(client, prefix) == "A"


def test_unreachable_endpoint_is_one_clear_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()  # nothing listens there
    endpoint = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with pytest.raises(DynamoPublishError) as failure:
        connect(endpoint, timeout_seconds=1)
    elapsed = time.monotonic() - started
    message = str(failure.value)
    assert elapsed < 5, f"took {elapsed:.1f} s"
    assert message.startswith(f"DynamoDB at {endpoint} (region {REGION}) is unreachable ("), message
    assert message.endswith("check the endpoint and the network.") and "\n" not in message
    assert SECRET not in message and "Traceback" not in message

    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)  # the same through the environment
    with pytest.raises(DynamoPublishError, match=f"^DynamoDB at {endpoint} .* is unreachable"):
        connect(timeout_seconds=1)


def test_a_server_that_stops_answering_mid_publish_fails_fast_and_keeps_the_old_run(
    own_server: Dynalite,
) -> None:
    client = connect(own_server.endpoint, timeout_seconds=0.5)
    publish_predictions(client, prediction_batches("A", 500), "A", prefix="p")

    def pauses_the_server_after_two_batches() -> Iterator[pa.RecordBatch]:
        for number, batch in enumerate(prediction_batches("B", 5_000, rows_per_batch=250)):
            if number == 2:
                own_server.pause()
            yield batch

    started = time.monotonic()
    try:
        with pytest.raises(DynamoPublishError) as failure:
            publish_predictions(client, pauses_the_server_after_two_batches(), "B", prefix="p")
        elapsed = time.monotonic() - started
    finally:
        own_server.resume()
    message = str(failure.value)
    assert elapsed < 8, f"took {elapsed:.1f} s"
    where = f"DynamoDB at {own_server.endpoint} (region {REGION})"
    assert message.startswith(f"{where} timed out: no answer within 0.5 s ("), message
    assert re.search(r" after [0-9,]+ items of version B were written;", message), message
    assert message.endswith("nothing was switched: readers still get version A.")
    assert "\n" not in message

    assert pointer(client, "p") == "A"  # the server is back with its data
    for i in range(0, 500, 11):
        assert check_forecast(read_forecast(client, f"C{i:07d}", "p"), i) == "A"
    rerun = publish_predictions(client, prediction_batches("B", 600), "B", prefix="p")
    assert (rerun.previous_version, rerun.customers) == ("A", 600)
    assert check_forecast(read_forecast(client, "C0000599", "p"), 599) == "B"

    own_server.restart()  # back empty: the next publish creates the tables again
    assert publish_predictions(client, prediction_batches("C", 10), "C", prefix="p").customers == 10
    assert pointer(client, "p") == "C"


class ThrottledClient:
    """The real client, but BatchWriteItem behaves like a table short of capacity.

    Calls number 2, 3, 5, 7, ... send only their first few items to the server and hand the
    rest back as UnprocessedItems; call number 4 is refused whole with
    ProvisionedThroughputExceededException.
    """

    def __init__(self, real: Any, keep_unprocessed_forever: bool = False) -> None:
        self.real = real
        self.keep_unprocessed_forever = keep_unprocessed_forever
        self.calls = itertools.count(1)
        self.lock = threading.Lock()
        self.unprocessed = self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def batch_write_item(self, RequestItems: dict[str, list]) -> dict:  # noqa: N803
        with self.lock:
            number = next(self.calls)
        [(table, requests)] = RequestItems.items()
        if number == 4:
            with self.lock:
                self.refused += 1
            raise ClientError(
                {
                    "Error": {
                        "Code": "ProvisionedThroughputExceededException",
                        "Message": "The level of configured provisioned throughput was exceeded",
                    }
                },
                "BatchWriteItem",
            )
        if self.keep_unprocessed_forever:
            sent, kept = [], requests
        elif number == 2 or (number > 1 and number % 2 == 1):
            sent, kept = requests[:3], requests[3:]
        else:
            sent, kept = requests, []
        if sent:
            self.real.batch_write_item(RequestItems={table: sent})
        with self.lock:
            self.unprocessed += len(kept)
        return {"UnprocessedItems": {table: kept} if kept else {}}


def test_throttling_and_unprocessed_items_are_resent_until_written(
    client: Any, prefix: str
) -> None:
    throttled = ThrottledClient(client)
    result = publish_predictions(
        throttled, prediction_batches("A", 1_200, rows_per_batch=500), "A", prefix=prefix
    )
    assert throttled.unprocessed > 500 and throttled.refused == 1  # the faults did happen
    assert result.customers == 1_200  # the count check held: every row acknowledged once
    items = scan_run(client, prefix, "A")
    assert len(items) == 1_200
    assert pointer(client, prefix) == "A"
    for i in range(0, 1_200, 13):
        assert check_forecast(read_forecast(client, f"C{i:07d}", prefix), i) == "A"


def test_items_unprocessed_for_too_long_fail_without_switching(
    client: Any, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_predictions(client, prediction_batches("A", 100), "A", prefix=prefix)
    monkeypatch.setattr(dynamodb_publish, "_STALL_SECONDS", 0.5)
    started = time.monotonic()
    with pytest.raises(DynamoPublishError) as failure:
        publish_predictions(
            ThrottledClient(client, keep_unprocessed_forever=True),
            prediction_batches("B", 100),
            "B",
            prefix=prefix,
        )
    assert time.monotonic() - started < 10
    message = str(failure.value)
    assert re.search(
        rf"kept returning 25 items of table {prefix}-forecasts as unprocessed", message
    )
    assert message.endswith("nothing was switched: readers still get version A.")
    assert pointer(client, prefix) == "A"


def test_a_count_mismatch_refuses_to_switch(client: Any, prefix: str) -> None:
    publish_predictions(client, prediction_batches("A", 300), "A", prefix=prefix)
    with pytest.raises(DynamoPublishError) as failure:
        publish_predictions(client, prediction_batches("B", 300), "B", customers=301, prefix=prefix)
    message = str(failure.value)
    assert message.startswith(f"Run B is incomplete in table {prefix}-forecasts at ")
    assert "300 items were acknowledged for 300 rows read, 301 customers expected;" in message
    assert message.endswith("nothing was switched: readers still get version A.")
    assert pointer(client, prefix) == "A"
    assert check_forecast(read_forecast(client, "C0000299", prefix), 299) == "A"


def test_a_publisher_that_lost_a_race_says_so(client: Any, prefix: str) -> None:
    publish_predictions(client, prediction_batches("A", 100), "A", prefix=prefix)

    def overtaken() -> Iterator[pa.RecordBatch]:
        yield from prediction_batches("B", 100)
        # Another publisher switches to C while B is still being written.
        publish_predictions(client, prediction_batches("C", 100), "C", prefix=prefix)

    with pytest.raises(DynamoPublishError, match="Another publisher switched the pointer") as lost:
        publish_predictions(client, overtaken(), "B", prefix=prefix)
    assert "to C while version B was being written (it named A before)" in str(lost.value)
    assert pointer(client, prefix) == "C"
    assert check_forecast(read_forecast(client, "C0000042", prefix), 42) == "C"


def test_connect_takes_region_and_endpoint_from_the_environment(
    server: Dynalite, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    # The service-specific variable wins over the global one, as botocore documents.
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", server.endpoint)
    assert connect().meta.endpoint_url == server.endpoint
    # AWS_REGION (which boto3 alone ignores) wins over AWS_DEFAULT_REGION, as in the AWS CLI.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    assert connect().meta.region_name == REGION
    monkeypatch.delenv("AWS_REGION")
    assert connect().meta.region_name == "us-west-2"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(DynamoPublishError, match="^No AWS region .*: set AWS_REGION"):
        connect()

    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(DynamoPublishError, match="^no AWS credentials were found for DynamoDB at"):
        connect(timeout_seconds=1)


def test_an_existing_table_with_other_keys_is_refused(client: Any, prefix: str) -> None:
    forecasts, _ = table_names(prefix)
    client.create_table(
        TableName=forecasts,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(DynamoPublishError, match=r"has the key schema \(id HASH S\), not the"):
        publish_predictions(client, prediction_batches("A", 10), "A", prefix=prefix)
