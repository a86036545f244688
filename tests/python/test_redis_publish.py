"""clv.redis_publish against a real redis-server started per test on a free loopback port."""

from __future__ import annotations

import datetime as dt
import random
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import redis
from programs import require_program

from clv.redis_publish import (
    RedisPublishError,
    connect,
    customer_key,
    mask_url,
    meta_key,
    pointer_key,
    publish_predictions,
    read_forecast,
    versions_key,
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


# ---------------------------------------------------------------------------- redis-server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """One redis-server process; restartable on the same port and data directory."""

    def __init__(self, binary: str, directory: Path, extra_args: tuple[str, ...]) -> None:
        self.binary, self.directory, self.extra_args = binary, directory, extra_args
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            self.binary,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--daemonize", "no"),
            *("--dir", str(self.directory), "--logfile", "redis.log"),
            *("--save", "", "--appendonly", "no"),
            *self.extra_args,
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        probe = redis.Redis(port=self.port, socket_timeout=0.5, retry=None)
        while True:
            if self.process.poll() is not None:
                log = self.directory / "redis.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                pytest.fail(f"redis-server exited with {self.process.returncode}:\n{tail}")
            try:
                probe.ping()
                break
            except redis.AuthenticationError:
                break  # answering, just wants a password
            except (redis.ConnectionError, redis.TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"redis-server on port {self.port} did not answer PING in 10 s")
                time.sleep(0.02)
        probe.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(5)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    binary = require_program("redis-server")
    servers: list[RedisServer] = []

    def start(*extra_args: str) -> RedisServer:
        server = RedisServer(binary, tmp_path / f"redis{len(servers)}", extra_args)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_redis: Callable[..., RedisServer]) -> RedisServer:
    return start_redis()


@pytest.fixture
def client(server: RedisServer) -> Iterator[redis.Redis]:
    connection = connect(server.url)
    yield connection
    connection.close()


# ---------------------------------------------------------------------------- data

AS_OF = {"A": dt.date(2024, 3, 31), "B": dt.date(2024, 6, 30)}


def _spend(tag: str, i: int) -> float:
    # Distinct per version so a hash mixing two runs is detectable field by field.
    return i + (0.5 if tag == "A" else 0.75)


def prediction_batches(
    tag: str, customers: int, rows_per_batch: int = 10_000
) -> Iterator[pa.RecordBatch]:
    for start in range(0, customers, rows_per_batch):
        ids = range(start, min(start + rows_per_batch, customers))
        spend = [_spend(tag, i) for i in ids]
        yield pa.RecordBatch.from_pydict(
            {
                "customer_id": [f"C{i:07d}" for i in ids],
                "as_of_date": pa.array([AS_OF.get(tag, dt.date(2024, 1, 1))] * len(ids)),
                "horizon_days": pa.array([90] * len(ids), pa.int32()),
                "expected_spend": spend,
                "spend_p10": [s * 0.25 for s in spend],
                "spend_p50": [s * 0.5 for s in spend],
                "spend_p90": [s * 2 for s in spend],
                "prob_purchase": [0.5] * len(ids),
                "model_version": [tag] * len(ids),
                "scored_at": pa.array(
                    [dt.datetime(2024, 7, 1, 2, 3, 4)] * len(ids), pa.timestamp("s")
                ),
            }
        )


def check_forecast(forecast: dict[str, str] | None, i: int) -> str:
    """Assert the hash is one whole row of one version; return that version's tag."""
    assert forecast is not None, f"customer {i} had no hash"
    tag = forecast.get("model_version")
    assert tag in AS_OF, forecast
    assert sorted(forecast) == sorted(FIELDS), forecast
    assert forecast["customer_id"] == f"C{i:07d}"
    assert forecast["as_of_date"] == AS_OF[tag].isoformat(), forecast
    assert float(forecast["expected_spend"]) == _spend(tag, i), forecast
    assert float(forecast["spend_p90"]) == _spend(tag, i) * 2, forecast
    return tag


def scan_keys(client: redis.Redis, pattern: str) -> set[str]:
    return set(client.scan_iter(match=pattern, count=5_000))


class Reader(threading.Thread):
    """Polls read_forecast for random customers until stopped (bounded by time and count)."""

    def __init__(self, url: str, customers: int, max_seconds: float = 10.0) -> None:
        super().__init__(daemon=True)
        self.url, self.customers, self.max_seconds = url, customers, max_seconds
        self.stop = threading.Event()
        self.warmed_up = threading.Event()
        self.seen: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        client = connect(self.url)
        rng = random.Random(7)
        deadline = time.monotonic() + self.max_seconds
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                i = rng.randrange(self.customers)
                tag = check_forecast(read_forecast(client, f"C{i:07d}"), i)
                if self.seen and tag != self.seen[-1]:
                    assert (self.seen[-1], tag) == ("A", "B"), "reader went back to A"
                self.seen.append(tag)
                if len(self.seen) >= 50:
                    self.warmed_up.set()
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            self.warmed_up.set()
            client.close()

    def finish(self) -> list[str]:
        self.stop.set()
        self.join(15)
        if self.error is not None:
            raise self.error
        return self.seen


# ---------------------------------------------------------------------------- tests


def test_publish_writes_every_customer_hash_pointer_and_meta(client: redis.Redis) -> None:
    result = publish_predictions(
        client,
        prediction_batches("A", 2_500, rows_per_batch=1_000),
        "A",
        metadata={"as_of_date": "2024-03-31", "model_version": "A"},
        batch_size=700,
    )
    assert (result.version, result.previous_version, result.customers) == ("A", None, 2_500)
    assert client.get(pointer_key()) == "A"
    assert len(scan_keys(client, "clv:A:customer:*")) == 2_500
    pipe = client.pipeline(transaction=False)
    for i in range(2_500):
        pipe.hgetall(customer_key("clv", "A", f"C{i:07d}"))
    for i, forecast in enumerate(pipe.execute()):
        assert check_forecast(forecast, i) == "A"
    assert read_forecast(client, "C0000001") == {
        "customer_id": "C0000001",
        "as_of_date": "2024-03-31",
        "horizon_days": "90",
        "expected_spend": "1.5",
        "spend_p10": "0.375",
        "spend_p50": "0.75",
        "spend_p90": "3",
        "prob_purchase": "0.5",
        "model_version": "A",
        "scored_at": "2024-07-01T02:03:04",
    }
    assert read_forecast(client, "nobody") is None
    meta = client.hgetall(meta_key("clv", "A"))
    assert meta["customers"] == "2500"
    assert meta["as_of_date"] == "2024-03-31" and meta["model_version"] == "A"
    assert meta["columns"] == ",".join(FIELDS)
    assert meta["published_at"].endswith("Z") and "flipped_at" in meta
    assert client.zrange(versions_key(), 0, -1) == ["A"]


def test_publish_accepts_dataframes_and_encodes_values(client: redis.Redis) -> None:
    frame = pd.DataFrame(
        {
            "customer_id": [17, 18],
            "expected_spend": [1 / 3, None],
            "big": [1e20, 2.0],
            "flag": [True, False],
            "as_of_date": [dt.date(2024, 6, 30)] * 2,
            "scored_at": pd.to_datetime(
                ["2024-07-01 02:03:04.5", "2024-07-01 00:00:00.0"], utc=True
            ),
        }
    )
    publish_predictions(client, [frame], "2024-06-30_m1", prefix="app:clv")
    assert read_forecast(client, "17", prefix="app:clv") == {
        "customer_id": "17",
        "expected_spend": repr(1 / 3),
        "big": "1e+20",
        "flag": "true",
        "as_of_date": "2024-06-30",
        "scored_at": "2024-07-01T02:03:04.500000Z",
    }
    missing = read_forecast(client, 18, prefix="app:clv")
    assert missing is not None and "expected_spend" not in missing  # nulls are omitted


def test_missing_customer_id_column_is_a_clear_error(client: redis.Redis) -> None:
    publish_predictions(client, prediction_batches("A", 10), "A")
    batch = pa.RecordBatch.from_pydict({"id": ["x"], "expected_spend": [1.0]})
    with pytest.raises(ValueError, match="no 'customer_id' column .*columns: id, expected_spend"):
        publish_predictions(client, [batch], "B")
    assert client.get(pointer_key()) == "A"
    assert client.zrange(versions_key(), 0, -1) == ["A"]  # nothing registered for B


def test_readers_switch_atomically_from_a_to_b(server: RedisServer, client: redis.Redis) -> None:
    customers = 50_000
    publish_predictions(client, prediction_batches("A", customers), "A")
    reader = Reader(server.url, customers)
    reader.start()
    assert reader.warmed_up.wait(10)
    result = publish_predictions(client, prediction_batches("B", customers), "B", batch_size=5_000)
    deadline = time.monotonic() + 5
    while reader.seen.count("B") < 50 and time.monotonic() < deadline and reader.is_alive():
        time.sleep(0.01)
    seen = reader.finish()
    assert result.previous_version == "A"
    assert "A" in seen and "B" in seen, f"reader saw {len(seen)} reads: {set(seen)}"
    switch = seen.index("B")
    assert set(seen[:switch]) == {"A"} and set(seen[switch:]) == {"B"}
    assert switch > 50  # the reader was really reading A while B was being written


def test_republishing_the_current_version_is_idempotent(
    server: RedisServer, client: redis.Redis
) -> None:
    publish_predictions(client, prediction_batches("A", 20_000), "A")
    keys_before = scan_keys(client, "clv:*")
    reader = Reader(server.url, 20_000)
    reader.start()
    assert reader.warmed_up.wait(10)
    again = publish_predictions(client, prediction_batches("A", 20_000), "A", batch_size=2_000)
    seen = reader.finish()
    assert set(seen) == {"A"}  # never a missing or foreign hash during the rerun
    assert again.previous_version == "A" and again.customers == 20_000
    assert scan_keys(client, "clv:*") == keys_before
    assert client.get(pointer_key()) == "A"
    assert client.ttl(customer_key("clv", "A", "C0000042")) == -1
    assert client.zrange(versions_key(), 0, -1) == ["A"]


def test_server_killed_mid_publish_keeps_old_version_and_rerun_succeeds(
    start_redis: Callable[..., RedisServer],
) -> None:
    server = start_redis("--appendonly", "yes", "--appendfsync", "always")
    client = connect(server.url, timeout_seconds=2)
    publish_predictions(client, prediction_batches("A", 3_000), "A")

    def dies_after_three_batches() -> Iterator[pa.RecordBatch]:
        for number, batch in enumerate(prediction_batches("B", 20_000, rows_per_batch=1_000)):
            if number == 3:
                server.kill()
            yield batch

    started = time.monotonic()
    with pytest.raises(RedisPublishError) as failure:
        publish_predictions(client, dies_after_three_batches(), "B")
    message = str(failure.value)
    assert time.monotonic() - started < 5
    assert message.startswith(f"Redis at {server.url} is unreachable (")
    assert re.search(r" after [1-3],000 customers of version B were written;", message), message
    assert message.endswith("nothing was switched: readers still get version A.")
    assert "\n" not in message

    server.start()  # same port, same appendonly directory
    assert client.get(pointer_key()) == "A"
    check_forecast(read_forecast(client, "C0000123"), 123)
    assert 1_000 <= len(scan_keys(client, "clv:B:customer:*")) <= 3_000  # abandoned partial

    rerun = publish_predictions(client, prediction_batches("B", 20_000), "B")
    assert (rerun.previous_version, rerun.customers) == ("A", 20_000)
    assert client.get(pointer_key()) == "B"
    assert len(scan_keys(client, "clv:B:customer:*")) == 20_000
    assert check_forecast(read_forecast(client, "C0019999"), 19_999) == "B"
    client.close()


def test_auth_failure_is_clear_and_never_shows_the_password(
    start_redis: Callable[..., RedisServer],
) -> None:
    server = start_redis("--requirepass", "s3cret-pw")
    base = f"127.0.0.1:{server.port}/0"
    for url in (f"redis://:wrong-pw@{base}", f"redis://{base}", f"redis://default:wrong-pw@{base}"):
        with pytest.raises(RedisPublishError) as failure:
            connect(url)
        message = str(failure.value)
        assert message.startswith(f"Redis at redis://{base} rejected the credentials ("), message
        assert "wrong-pw" not in message and "s3cret" not in message

    client = connect(f"redis://:s3cret-pw@{base}")
    publish_predictions(client, prediction_batches("A", 100), "A")
    assert check_forecast(read_forecast(client, "C0000099"), 99) == "A"
    client.close()
    assert mask_url(f"redis://:s3cret-pw@{base}") == f"redis://:***@{base}"
    assert mask_url(f"rediss://app:s3cret-pw@{base}") == f"rediss://app:***@{base}"


def test_unreachable_server_is_one_clear_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()  # nothing listens there
    with pytest.raises(
        RedisPublishError, match=rf"^Redis at redis://127.0.0.1:{port}/0 is unreach"
    ):
        connect(f"redis://127.0.0.1:{port}/0", timeout_seconds=1)
    monkeypatch.setenv("REDIS_URL", f"redis://:pw@127.0.0.1:{port}/0")
    with pytest.raises(RedisPublishError, match="is unreachable") as failure:
        connect()
    assert "pw" not in str(failure.value)
    monkeypatch.delenv("REDIS_URL")
    with pytest.raises(RedisPublishError, match="REDIS_URL is not set"):
        connect()


def test_tls_to_a_server_without_tls_says_to_use_redis_scheme(server: RedisServer) -> None:
    """The server waits for a command while the client waits for its TLS handshake: only
    a timeout comes back, so the sentence names the likely cause."""
    tls_url = server.url.replace("redis://", "rediss://", 1)
    with pytest.raises(RedisPublishError, match=r"timed out.*use redis:// for one\.$"):
        connect(tls_url, timeout_seconds=0.5)


def test_previous_version_expires_and_abandoned_partials_are_deleted(
    client: redis.Redis,
) -> None:
    publish_predictions(client, prediction_batches("A", 3_000), "A")
    publish_predictions(client, prediction_batches("B", 3_000), "B", grace_seconds=3_600)
    old_ttl = client.ttl(customer_key("clv", "A", "C0000007"))
    assert 0 < old_ttl <= 3_600
    assert 0 < client.ttl(meta_key("clv", "A")) <= 3_600
    assert client.ttl(customer_key("clv", "B", "C0000007")) == -1
    assert client.ttl(pointer_key()) == -1
    assert check_forecast(read_forecast(client, "C0000007"), 7) == "B"

    def crashes_after_two_batches() -> Iterator[pa.RecordBatch]:
        batches = prediction_batches("C", 3_000, rows_per_batch=1_000)
        yield next(batches)
        yield next(batches)
        raise OSError("upstream query died")

    with pytest.raises(OSError, match="upstream query died"):
        publish_predictions(client, crashes_after_two_batches(), "C")
    assert client.get(pointer_key()) == "B"
    assert 0 < len(scan_keys(client, "clv:C:*")) <= 2_000  # a partial keyspace
    assert "C" in client.zrange(versions_key(), 0, -1)

    publish_predictions(client, prediction_batches("A", 3_000), "D", grace_seconds=7_200)
    assert scan_keys(client, "clv:C:*") == set()  # never current: deleted outright
    assert client.zrange(versions_key(), 0, -1) == ["A", "B", "D"]
    assert 3_600 < client.ttl(customer_key("clv", "B", "C0000007")) <= 7_200
    assert 0 < client.ttl(customer_key("clv", "A", "C0000007")) <= old_ttl  # grace not reset
    assert client.ttl(customer_key("clv", "D", "C0000007")) == -1


def test_republishing_a_retired_version_makes_it_permanent_again(client: redis.Redis) -> None:
    publish_predictions(client, prediction_batches("A", 500), "A")
    publish_predictions(client, prediction_batches("B", 500), "B")
    assert client.ttl(customer_key("clv", "A", "C0000001")) > 0
    rollback = publish_predictions(client, prediction_batches("A", 500), "A")
    assert rollback.previous_version == "B"
    assert client.ttl(customer_key("clv", "A", "C0000001")) == -1
    assert client.ttl(meta_key("clv", "A")) == -1
    assert "expires_at" not in client.hgetall(meta_key("clv", "A"))
    assert client.ttl(customer_key("clv", "B", "C0000001")) > 0


def test_timeout_mid_publish_is_bounded_and_clear(server: RedisServer) -> None:
    client = connect(server.url, timeout_seconds=0.25)
    publish_predictions(client, prediction_batches("A", 1_000), "A")
    admin = redis.Redis(port=server.port, decode_responses=True)
    pause_ms = 1_500

    def pauses_server_after_two_batches() -> Iterator[pa.RecordBatch]:
        for number, batch in enumerate(prediction_batches("B", 5_000, rows_per_batch=500)):
            if number == 2:
                admin.execute_command("CLIENT", "PAUSE", pause_ms, "ALL")
            yield batch

    started = time.monotonic()
    with pytest.raises(RedisPublishError) as failure:
        publish_predictions(client, pauses_server_after_two_batches(), "B")
    elapsed = time.monotonic() - started
    message = str(failure.value)
    assert elapsed < pause_ms / 1000, f"took {elapsed:.1f} s"
    assert message.startswith(f"Redis at {server.url} timed out: no answer within 0.25 s (")
    assert message.endswith("nothing was switched: readers still get version A.")

    time.sleep(max(0.0, started + pause_ms / 1000 + 0.2 - time.monotonic()))
    assert client.get(pointer_key()) == "A"
    assert publish_predictions(client, prediction_batches("B", 5_000), "B").customers == 5_000
    admin.close()
    client.close()
