"""Publish per-customer forecasts to DynamoDB and switch readers to them atomically.

The DynamoDB twin of ``clv.redis_publish``: the same guarantees in DynamoDB's own terms.

Table layout (``prefix`` defaults to ``clv``)::

    {prefix}-forecasts   partition key customer_id (S), sort key run (S, the version)
        one item per customer per run; every input column is an attribute, plus
        expires_at (N, epoch seconds), the table's TTL attribute, set only on the items
        of a retired run
    {prefix}-runs        partition key run (S)
        run = "current"    the pointer: version (S, the run readers get),
                           previous_version (S), flipped_at (S)
        run = <version>    one item per run: status (writing, published), customers (N),
                           columns (S, comma-separated), started_at, published_at, plus
                           the caller's metadata as strings; once the run has been
                           replaced: retired_at and items_expire_at (S)

Both tables are created when absent (on-demand capacity, PAY_PER_REQUEST) and the publish
waits until they are ACTIVE. Time to live is enabled on ``expires_at`` of the forecasts
table with UpdateTimeToLive; where the server does not know that operation (dynalite, a
local stand-in) or the credentials may not use it, one warning is logged and the publish
goes on: the retired items still carry ``expires_at``, so enabling TTL later deletes them.
The partition key ``customer_id`` spreads the writes of a run over every partition, never
one hot key.

A publish (1) reads the pointer with a consistent read, (2) writes every item of the run
with BatchWriteItem, 25 PutRequests a call and several calls in flight, resending
UnprocessedItems and throttled calls with exponential backoff and jitter, (3) checks that
the items acknowledged equal the rows read (and ``customers`` when given), (4) puts the
run's item, (5) flips the pointer with one conditional UpdateItem (the condition is the
pointer it read in step 1, so of two publishers racing only one can win, and the other
says so), and only then (6) retires the previous run: UpdateItem SET expires_at = now +
``grace_seconds`` on (customer_id, previous run) for every customer of the new run, with
the condition that the item exists and has no expires_at yet (a new customer, or a
retirement already done, is skipped; a redone retirement never extends a grace period).

A reader does two GetItems (``read_forecast``): the pointer, then the customer's item in
the run the pointer names, both strongly consistent (1 read unit each for items under
4 KB, where an eventually consistent read costs half: an eventually consistent read right
after the flip could miss an item the publish has just written). Each item is written by
one PutItem, so a reader sees one whole run or the other, never a mix, and never a missing
item after the flip. Readers that got the previous pointer keep reading its items for
``grace_seconds``.

Trade-offs: a customer present in the previous run but absent from the new one keeps his
old item, without expires_at (readers never reach it: they read the pointer's run);
delete such items by hand if they matter. A run that is never flipped (a publish killed
before the switch and never rerun) keeps its items too; its runs item says
``status = writing``. The cost is about two writes per customer per run: its PutItem
(1 write unit per KB) and the next run's expiry UpdateItem (1 write unit, charged even
when the condition fails), plus the deletion by TTL, which is free.

Publishing the version that is already current rewrites its items in place (PutItem is
idempotent) and leaves the pointer and the expiry times alone, so a rerun is harmless; it
finishes a retirement a killed publish left half done. A publish killed at any point
(kill -9 included) leaves the previous run served; rerunning it publishes the run whole.
Republishing a retired run (a rollback) puts its items anew, without expires_at.

Value encoding (DynamoDB types):

* floats: N, the shortest decimal that parses back to the same float (Python's ``repr``
  digits; ``3.0`` is written ``3``). N has no NaN or infinity: such a value leaves the
  attribute out of that item, like a null. A float outside N's range (magnitude 1e-130 to
  below 1e126) is refused with a ValueError;
* integers and decimals: N; booleans: BOOL;
* strings: S; dates: ISO ``YYYY-MM-DD`` (S); timestamps: ISO
  ``YYYY-MM-DDTHH:MM:SS[.ffffff]`` (S) at the column's precision, plus ``Z`` (UTC) or
  ``+HHMM`` when the column has a time zone;
* nulls: the attribute is omitted from the item.

DynamoDB keeps numbers as decimals, so ``read_forecast`` returns an N as an int when it is
integral and as a float otherwise; a float therefore reads back equal (``==``), not
always of the same type.

Credentials, region and endpoint come from boto3's standard chain (AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/config, a role; AWS_ENDPOINT_URL_DYNAMODB and
AWS_ENDPOINT_URL); boto3 reads the region from AWS_DEFAULT_REGION or the profile only, so
``connect`` honours AWS_REGION itself, ahead of those, as the AWS CLI and the other SDKs
do. The publisher needs dynamodb:DescribeTable, CreateTable, DescribeTimeToLive,
UpdateTimeToLive, GetItem, PutItem, UpdateItem and BatchWriteItem on both tables;
ListTables (the reachability probe of ``connect``) may be denied. The app needs only
GetItem.

Assumptions: ``customer_id`` unique in the input. Duplicates inside one record batch are
rejected (BatchWriteItem refuses them); duplicates across batches would need memory that
grows with the customers to detect, so they are not (the dbt ``unique`` test on the
forecast model guards that). Memory stays flat whatever the number of customers: rows are
encoded a slice at a time, and the customer ids the retirement needs are spilled to an
anonymous temporary file (about 15 MB per million customers).
"""

from __future__ import annotations

import logging
import os
import random
import re
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

import boto3
import pyarrow as pa
import pyarrow.compute as pc
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from clv.progress import Progress
from clv.publishing import PublishOutcome, caller_metadata, iso_now

log = logging.getLogger(__name__)

ID_COLUMN = "customer_id"
RUN_ATTRIBUTE = "run"
TTL_ATTRIBUTE = "expires_at"
POINTER_RUN = "current"
DEFAULT_PREFIX = "clv"
DEFAULT_GRACE_SECONDS = 86_400

# BatchWriteItem takes at most 25 put requests per call.
_BATCH_ITEMS = 25
# Calls in flight at once. Each BatchWriteItem waits a few milliseconds on the network, and
# botocore's Python serialisation holds the GIL for about as long: more threads than this
# only queue on the GIL.
_WRITE_THREADS = 8
_RETIRE_THREADS = 16
_MAX_IN_FLIGHT = 2 * _WRITE_THREADS
# Rows turned into Python items at a time: bounds memory whatever the caller's batch size.
_ENCODE_ROWS = 2_000
# Customer ids per retirement task (one UpdateItem each).
_RETIRE_IDS = 100
# botocore attempts per call (standard retry mode: a throttled call backs off 1 s, 2 s, ...
# up to 20 s with jitter); a call that gets no answer at all is tried this many times only,
# so an unreachable endpoint is reported in seconds instead of minutes.
_MAX_ATTEMPTS = 10
_UNREACHABLE_ATTEMPTS = 3
# Our own resend loop (UnprocessedItems, throttling that outlasted botocore's attempts):
# full-jitter exponential backoff, giving up when a call makes no progress for this long.
_BACKOFF_BASE_SECONDS = 0.05
_BACKOFF_CAP_SECONDS = 5.0
_STALL_SECONDS = 120.0
_TABLE_WAIT_SECONDS = 300.0

_THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)
_CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "MissingAuthenticationTokenException",
        "IncompleteSignatureException",
        "InvalidClientTokenId",
    }
)
# Versions become sort-key values and appear in messages; "current" names the pointer item.
_VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
# Table names allow 3-255 characters from A-Z a-z 0-9 _ . -; "-forecasts" is appended.
_PREFIX_RE = re.compile(r"[A-Za-z0-9_.-]{1,200}")
_RUN_RESERVED = frozenset(
    {
        RUN_ATTRIBUTE,
        "status",
        "customers",
        "columns",
        "started_at",
        "published_at",
        "retired_at",
        "items_expire_at",
    }
)
# An N has at most 38 significant digits and a magnitude from 1e-130 to below 1e126.
_N_MAX = 1e126
_N_MIN = 1e-130


class DynamoPublishError(RuntimeError):
    """DynamoDB could not be used; the message is one sentence, safe to show (no secrets)."""


@dataclass(frozen=True)
class PublishResult:
    """``previous_version`` is what readers got before (equal to ``version`` on a rerun);
    ``seconds`` is the wall time of the whole publish, retiring the previous run included."""

    version: str
    customers: int
    previous_version: str | None
    seconds: float


def table_names(prefix: str = DEFAULT_PREFIX) -> tuple[str, str]:
    """(forecasts table, runs table) for ``prefix``."""
    _check_prefix(prefix)
    return f"{prefix}-forecasts", f"{prefix}-runs"


def _check_prefix(prefix: str) -> None:
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(
            f"table prefix {prefix!r} must be 1-200 characters from A-Z a-z 0-9 _ . - "
            "(DynamoDB table names are {prefix}-forecasts and {prefix}-runs)"
        )


def _check_version(version: str) -> None:
    if not isinstance(version, str) or not _VERSION_RE.fullmatch(version):
        raise ValueError(
            f"version {version!r} must be 1-128 characters from A-Z a-z 0-9 . _ + - "
            "starting with a letter or digit (e.g. 2026-06-30_m20260701T020000Z)"
        )
    if version == POINTER_RUN:
        raise ValueError(f"version {version!r} is reserved: it names the pointer item")


# ---------------------------------------------------------------------------- connection


def connect(endpoint_url: str | None = None, timeout_seconds: float = 5.0) -> Any:
    """A boto3 DynamoDB client, checked with one ListTables call.

    Credentials, region and endpoint come from boto3's standard chain, AWS_REGION included
    (see the module docstring); ``endpoint_url`` overrides the endpoint. Every connection
    and every answer is awaited at most ``timeout_seconds``. A throttled call is retried by
    botocore with backoff (up to 10 attempts); a call that gets no answer at all is tried 3
    times, so an unreachable endpoint fails in seconds.
    """
    if timeout_seconds <= 0:
        raise ValueError("timeout_seconds must be positive")
    config = Config(
        connect_timeout=timeout_seconds,
        read_timeout=timeout_seconds,
        retries={"mode": "standard", "total_max_attempts": _MAX_ATTEMPTS},
        max_pool_connections=max(_WRITE_THREADS, _RETIRE_THREADS) + 2,
        # The items are built here, well-formed; validating them again in Python would cost
        # a third of a publish's time.
        parameter_validation=False,
    )
    where = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    where = where or os.environ.get("AWS_ENDPOINT_URL") or "DynamoDB's regional endpoint"
    try:
        session = boto3.session.Session()
        region = os.environ.get("AWS_REGION") or session.region_name
        if not region:
            raise NoRegionError()
        client = session.client(
            "dynamodb", region_name=region, endpoint_url=endpoint_url, config=config
        )
    except NoRegionError:
        raise DynamoPublishError(
            f"No AWS region is configured for DynamoDB at {where}: set AWS_REGION "
            "(or AWS_DEFAULT_REGION, or region in the AWS profile)."
        ) from None
    except (BotoCoreError, ValueError) as exc:
        raise DynamoPublishError(
            f"DynamoDB at {where} cannot be used: {_one_line(str(exc))}."
        ) from None
    client.meta.events.register_first("needs-retry.dynamodb", _stop_retrying_when_unreachable)
    try:
        client.list_tables(Limit=1)
    except ClientError as exc:
        # Denied ListTables still proves the endpoint answers and accepts the credentials.
        if _code(exc) != "AccessDeniedException":
            raise DynamoPublishError(_describe_failure(client, exc) + ".") from None
    except BotoCoreError as exc:
        raise DynamoPublishError(_describe_failure(client, exc) + ".") from None
    return client


def _stop_retrying_when_unreachable(
    attempts: int, caught_exception: Exception | None = None, response: object = None, **_: Any
) -> bool | None:
    """needs-retry handler run before botocore's: False vetoes a retry, None lets it decide.

    No response and an exception means the endpoint refused, dropped or never answered.
    """
    if response is None and caught_exception is not None and attempts >= _UNREACHABLE_ATTEMPTS:
        return False
    return None


def _where(client: Any) -> str:
    """Where the client points; built from its settings, so no credential can leak."""
    return f"{client.meta.endpoint_url} (region {client.meta.region_name})"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _one_line(text: str) -> str:
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        secret = os.environ.get(name)
        if secret:
            text = text.replace(secret, "***")
    return " ".join(text.split()).rstrip(".")


def _describe_failure(client: Any, exc: Exception, table: str | None = None) -> str:
    """'DynamoDB at X <what went wrong> (<driver reason>)', without a final period."""
    where = f"DynamoDB at {_where(client)}"
    on = f" on table {table}" if table else ""
    reason = _one_line(str(exc)) or type(exc).__name__
    config = client.meta.config
    if isinstance(exc, NoCredentialsError):
        return (
            f"no AWS credentials were found for {where}: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with a role"
        )
    if isinstance(exc, ConnectTimeoutError):
        return f"{where} timed out: no connection within {config.connect_timeout:g} s ({reason})"
    if isinstance(exc, ReadTimeoutError):
        return f"{where} timed out: no answer within {config.read_timeout:g} s ({reason})"
    if isinstance(exc, BotocoreConnectionError):  # refused, closed, proxy, TLS
        return f"{where} is unreachable ({reason}): check the endpoint and the network"
    if isinstance(exc, ClientError):
        code = _code(exc)
        message = _one_line(str(exc.response.get("Error", {}).get("Message", ""))) or code
        operation = getattr(exc, "operation_name", "a call")
        if code in _CREDENTIAL_CODES:
            return f"{where} rejected the credentials ({code}: {message})"
        if code == "AccessDeniedException":
            return f"{where} denied {operation}{on} to these credentials ({message})"
        if code == "ResourceNotFoundException":
            return f"{where} found no table for {operation}{on} ({message})"
        if code in _THROTTLING_CODES:
            return f"{where} kept throttling {operation}{on} ({code}): rerun later"
        return f"{where} refused {operation}{on} ({code}: {message})"
    return f"{where} failed ({reason})"


# ---------------------------------------------------------------------------- input


def _record_batches(
    batches: Iterable[pa.RecordBatch | pa.Table] | pa.RecordBatchReader,
) -> Iterator[pa.RecordBatch]:
    """The non-empty RecordBatches of the input, taken lazily."""
    for item in batches:
        if isinstance(item, pa.Table):
            yield from (chunk for chunk in item.to_batches() if chunk.num_rows)
        elif isinstance(item, pa.RecordBatch):
            if item.num_rows:
                yield item
        else:
            raise TypeError(
                "publish_predictions expects pyarrow RecordBatches (or Tables, or a "
                f"RecordBatchReader), got {type(item).__name__}"
            )


def _check_columns(schema: pa.Schema) -> list[str]:
    names = list(schema.names)
    if ID_COLUMN not in names:
        shown = ", ".join(names) or "none"
        raise ValueError(
            f"the predictions have no {ID_COLUMN!r} column (columns: {shown}); "
            "it is the partition key of every item"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"the predictions have duplicate column names: {names}")
    clash = sorted({RUN_ATTRIBUTE, TTL_ATTRIBUTE} & set(names))
    if clash:
        raise ValueError(f"columns {clash} are reserved by the table layout; rename them")
    id_type = schema.field(ID_COLUMN).type
    if pa.types.is_dictionary(id_type):
        id_type = id_type.value_type
    if not (pa.types.is_string(id_type) or pa.types.is_large_string(id_type)):
        raise TypeError(
            f"{ID_COLUMN!r} must be a string column (it is {id_type}); cast it to string"
        )
    return names


def _check_ids(batch: pa.RecordBatch) -> None:
    ids = batch.column(ID_COLUMN)
    if pa.types.is_dictionary(ids.type):
        ids = ids.dictionary_decode()
    if ids.null_count:
        raise ValueError(f"{ids.null_count} rows have a null {ID_COLUMN}")
    lengths = pc.binary_length(ids)
    empty = pc.sum(pc.equal(lengths, 0)).as_py() or 0
    if empty:
        raise ValueError(f"{empty} rows have an empty {ID_COLUMN} (a key must not be empty)")
    if pc.max(lengths).as_py() > 2048:
        raise ValueError(f"a {ID_COLUMN} is longer than 2048 bytes, DynamoDB's key limit")
    repeats = len(ids) - pc.count_distinct(ids).as_py()
    if repeats:
        raise ValueError(f"{repeats} {ID_COLUMN} values repeat within one batch")


def _attribute_values(column: pa.Array, name: str) -> list[dict[str, Any] | None]:
    """One column as DynamoDB attribute values (None where the attribute is left out)."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.dictionary_decode(), kind.value_type
    if pa.types.is_null(kind):
        return [None] * len(column)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return [None if v is None else {"S": v} for v in column.to_pylist()]
    if pa.types.is_boolean(kind):
        return [None if v is None else {"BOOL": v} for v in column.to_pylist()]
    if pa.types.is_floating(kind):
        finite = pc.is_finite(column)  # null where null: NaN and inf become nulls
        column = pc.if_else(finite, column, pa.scalar(None, kind))
        magnitude = pc.abs(pc.cast(column, pa.float64()))
        outside = pc.or_(
            pc.greater_equal(magnitude, _N_MAX),
            pc.and_(pc.less(magnitude, _N_MIN), pc.greater(magnitude, 0)),
        )
        if pc.any(outside).as_py():
            bad = pc.filter(column, outside)[0].as_py()
            raise ValueError(
                f"column {name!r} holds {bad!r}, outside the range of a DynamoDB number "
                "(magnitude 1e-130 to below 1e126)"
            )
        text = pc.cast(column, pa.string())
    elif pa.types.is_integer(kind) or pa.types.is_decimal(kind):
        if pa.types.is_decimal(kind) and kind.precision > 38:
            raise TypeError(f"column {name!r} is {kind}: a DynamoDB number holds 38 digits at most")
        text = pc.cast(column, pa.string())
    elif pa.types.is_date(kind):
        return [None if v is None else {"S": v} for v in pc.cast(column, pa.string()).to_pylist()]
    elif pa.types.is_timestamp(kind):
        text = pc.cast(column, pa.string())
        # Arrow separates date and time with a space; ISO 8601 readers expect 'T'.
        text = pc.replace_substring(text, pattern=" ", replacement="T", max_replacements=1)
        return [None if v is None else {"S": v} for v in text.to_pylist()]
    else:
        raise TypeError(
            f"column {name!r} has type {kind}, which has no DynamoDB form here; "
            "cast or drop it before publishing"
        )
    return [None if v is None else {"N": v} for v in text.to_pylist()]


def _encode_rows(batch: pa.RecordBatch, run: dict[str, str]) -> list[dict[str, Any]]:
    """The PutRequests of a slice of rows: every non-null attribute plus the run key."""
    names = batch.schema.names
    columns = [_attribute_values(c, n) for n, c in zip(names, batch.columns, strict=True)]
    requests = []
    for values in zip(*columns, strict=True):
        item = {name: value for name, value in zip(names, values, strict=True) if value is not None}
        item[RUN_ATTRIBUTE] = run
        requests.append({"PutRequest": {"Item": item}})
    return requests


def _s(value: str) -> dict[str, str]:
    return {"S": value}


# ---------------------------------------------------------------------------- tables


def _ensure_tables(client: Any, prefix: str) -> None:
    """Create the two tables when absent, wait until ACTIVE, and ask for TTL once."""
    forecasts, runs = table_names(prefix)
    wanted = {
        forecasts: [(ID_COLUMN, "HASH"), (RUN_ATTRIBUTE, "RANGE")],
        runs: [(RUN_ATTRIBUTE, "HASH")],
    }
    for table, keys in wanted.items():
        description = _describe_table(client, table)
        if description is None:
            _create_table(client, table, keys)
        else:
            _check_key_schema(client, description, keys)
    deadline = time.monotonic() + _TABLE_WAIT_SECONDS
    for table in wanted:
        delay = 0.05
        while (status := (_describe_table(client, table) or {}).get("TableStatus")) != "ACTIVE":
            if time.monotonic() > deadline:
                raise DynamoPublishError(
                    f"Table {table} at {_where(client)} is still {status or 'absent'} after "
                    f"{_TABLE_WAIT_SECONDS:g} s; nothing was published: rerun once it is ACTIVE."
                )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    _ensure_ttl(client, forecasts)


def _describe_table(client: Any, table: str) -> dict[str, Any] | None:
    try:
        return client.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return None
        raise


def _create_table(client: Any, table: str, keys: list[tuple[str, str]]) -> None:
    try:
        client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": n, "KeyType": k} for n, k in keys],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n, _ in keys],
            BillingMode="PAY_PER_REQUEST",
        )
        log.info("created DynamoDB table %s at %s", table, _where(client))
    except ClientError as exc:
        if _code(exc) != "ResourceInUseException":  # created by someone else meanwhile
            raise


def _check_key_schema(
    client: Any, description: dict[str, Any], keys: list[tuple[str, str]]
) -> None:
    have = [(k["AttributeName"], k["KeyType"]) for k in description.get("KeySchema", [])]
    types = {a["AttributeName"]: a["AttributeType"] for a in description["AttributeDefinitions"]}
    if have != keys or any(types.get(name) != "S" for name, _ in keys):
        shown = ", ".join(f"{n} {k} {types.get(n, '?')}" for n, k in have)
        wanted = ", ".join(f"{n} {k} S" for n, k in keys)
        raise DynamoPublishError(
            f"Table {description['TableName']} at {_where(client)} has the key schema "
            f"({shown}), not the ({wanted}) this publisher writes: choose another table prefix."
        )


def _ensure_ttl(client: Any, table: str) -> None:
    try:
        description = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        status = description.get("TimeToLiveStatus")
        attribute = description.get("AttributeName")
        if status in ("ENABLED", "ENABLING") and attribute == TTL_ATTRIBUTE:
            return
        if status in ("ENABLED", "ENABLING", "DISABLING"):
            log.warning(
                "TTL of DynamoDB table %s is %s on %r, not %r: retired runs will not expire",
                table,
                status,
                attribute,
                TTL_ATTRIBUTE,
            )
            return
        client.update_time_to_live(
            TableName=table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
        log.info("enabled TTL on %s.%s", table, TTL_ATTRIBUTE)
    except ClientError as exc:
        if _code(exc) in _CREDENTIAL_CODES:
            raise
        log.warning(
            "could not enable TTL on %s.%s (%s); retired runs' items carry %s and expire once "
            "TTL is enabled",
            table,
            TTL_ATTRIBUTE,
            _code(exc) or _one_line(str(exc)),
            TTL_ATTRIBUTE,
        )


# ---------------------------------------------------------------------------- publish


@dataclass
class _State(PublishOutcome):
    """What a failure message needs to say what readers still see."""

    rows: int = 0
    table: str | None = None  # the table being worked on, for messages


class _Unprocessed(Exception):
    """A write call made no progress for _STALL_SECONDS; args[0] is how many items it holds."""


class _Cancelled(Exception):
    """The publish failed elsewhere; a worker stops resending."""


@dataclass
class _Workers:
    pool: ThreadPoolExecutor
    stop: threading.Event = field(default_factory=threading.Event)
    in_flight: deque[Future[int]] = field(default_factory=deque)


def publish_predictions(
    client: Any,
    batches: Iterable[pa.RecordBatch] | pa.RecordBatchReader,
    version: str,
    *,
    customers: int | None = None,
    prefix: str = DEFAULT_PREFIX,
    grace_seconds: int = DEFAULT_GRACE_SECONDS,
    metadata: Mapping[str, object] | None = None,
) -> PublishResult:
    """Write every row as an item of run ``version``, then make ``version`` current.

    ``customers``, when given, is the number of rows expected: the progress lines count
    towards it and a publish that read a different number refuses to switch.

    Raises DynamoPublishError (one sentence, no secrets) when DynamoDB is unreachable, times
    out, rejects the credentials or a call, or the run is incomplete; ValueError/TypeError
    for unusable input. In every such case the pointer still names the previous run.
    """
    started = time.monotonic()
    _check_version(version)
    forecasts, runs = table_names(prefix)
    if grace_seconds <= 0:
        raise ValueError("grace_seconds must be positive")
    if customers is not None and customers < 0:
        raise ValueError("customers must not be negative")
    extra = caller_metadata(metadata, _RUN_RESERVED)

    pending = _record_batches(batches)
    first = next(pending, None)
    if first is None:
        raise ValueError("there are no prediction rows; refusing to switch readers to nothing")
    columns = _check_columns(first.schema)

    state = _State(version, "items", "read the pointer item once DynamoDB answers again, or rerun")
    with tempfile.TemporaryFile(prefix="clv-dynamodb-ids-") as spill:
        try:
            _ensure_tables(client, prefix)
            state.table = runs
            pointer = _get(client, runs, POINTER_RUN)
            state.previous = (pointer or {}).get("version", {}).get("S")
            state.previous_known = True
            to_retire = _runs_to_retire(client, runs, pointer, version)
            _mark_writing(client, runs, version)
            state.table = forecasts
            _write_run(
                client,
                forecasts,
                version,
                _chain(first, pending),
                columns,
                customers,
                state,
                spill if to_retire else None,
            )
            _check_count(client, forecasts, customers, state)
            state.table = runs
            _put_run_item(client, runs, version, state.written, columns, extra)
            if state.previous != version:
                state.flipping = True
                _flip(client, runs, version, state.previous)
                state.flipping = False
        except (BotoCoreError, ClientError) as exc:
            # Only a lost answer leaves the flip in doubt; an error reply means it did not run.
            state.flipping = state.flipping and not isinstance(exc, ClientError)
            failure = _describe_failure(client, exc, state.table)
            message = f"{failure}{state.after()}; {state.outcome()}."
            raise DynamoPublishError(message) from None
        except _Unprocessed as exc:
            raise DynamoPublishError(
                f"DynamoDB at {_where(client)} kept returning {exc.args[0]:,} items of table "
                f"{forecasts} as unprocessed for {_STALL_SECONDS:g} s (throttled: raise its "
                f"capacity or rerun later){state.after()}; {state.outcome()}."
            ) from None

        log.info(
            "%s:%s is live with %d customers after %.1f s",
            prefix,
            version,
            state.written,
            time.monotonic() - started,
        )
        if to_retire:
            try:
                _retire(client, forecasts, runs, to_retire, spill, state.written, grace_seconds)
            except (BotoCoreError, ClientError, _Unprocessed) as exc:
                # The new run is live; a rerun of this version finishes the retirement.
                reason = (
                    _describe_failure(client, exc, forecasts)
                    if not isinstance(exc, _Unprocessed)
                    else "throttled for too long"
                )
                log.warning(
                    "%s while retiring run(s) %s; version %s is live, rerun the publish to "
                    "finish the retirement",
                    reason,
                    ", ".join(to_retire),
                    version,
                )
    result = PublishResult(version, state.written, state.previous, time.monotonic() - started)
    log.info(
        "published %d customers to DynamoDB as %s:%s in %.1f s (previous version: %s)",
        result.customers,
        prefix,
        version,
        result.seconds,
        state.previous,
    )
    return result


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest


def _get(client: Any, table: str, run: str) -> dict[str, Any] | None:
    response = client.get_item(TableName=table, Key={RUN_ATTRIBUTE: _s(run)}, ConsistentRead=True)
    return response.get("Item")


def _runs_to_retire(
    client: Any, runs: str, pointer: dict[str, Any] | None, version: str
) -> list[str]:
    """Runs whose items get an expiry once ``version`` is live.

    The current run (unless it is ``version``), and the run before it when its retirement
    never finished (a publish killed after its switch).
    """
    candidates = []
    for name in ("version", "previous_version"):
        run = (pointer or {}).get(name, {}).get("S")
        if run is not None and run != version and run not in candidates:
            candidates.append(run)
    return [run for run in candidates if "retired_at" not in (_get(client, runs, run) or {})]


def _mark_writing(client: Any, runs: str, version: str) -> None:
    """Record the run before writing, so a partial one left by a killed publish is findable."""
    client.update_item(
        TableName=runs,
        Key={RUN_ATTRIBUTE: _s(version)},
        UpdateExpression="SET #started = :now, #status = if_not_exists(#status, :writing)",
        ExpressionAttributeNames={"#started": "started_at", "#status": "status"},
        ExpressionAttributeValues={":now": _s(iso_now()), ":writing": _s("writing")},
    )


def _write_run(
    client: Any,
    table: str,
    version: str,
    batches: Iterator[pa.RecordBatch],
    columns: list[str],
    customers: int | None,
    state: _State,
    spill: IO[bytes] | None,
) -> None:
    """BatchWriteItem every row, several calls in flight; counts rows and items written."""
    run = _s(version)
    shown = Progress(f"publishing to DynamoDB as {version}", customers, "forecasts")
    writer = pa.ipc.new_stream(spill, pa.schema([(ID_COLUMN, pa.string())])) if spill else None
    with ThreadPoolExecutor(_WRITE_THREADS, thread_name_prefix="clv-dynamodb-write") as pool:
        workers = _Workers(pool)
        try:
            for number, batch in enumerate(batches, 1):
                try:
                    if batch.schema.names != columns:
                        raise ValueError(f"its columns {batch.schema.names} differ from {columns}")
                    _check_ids(batch)
                    if writer is not None:
                        ids = pc.cast(batch.column(ID_COLUMN), pa.string())
                        writer.write_batch(pa.record_batch([ids], names=[ID_COLUMN]))
                    for start in range(0, batch.num_rows, _ENCODE_ROWS):
                        requests = _encode_rows(batch.slice(start, _ENCODE_ROWS), run)
                        for at in range(0, len(requests), _BATCH_ITEMS):
                            chunk = requests[at : at + _BATCH_ITEMS]
                            _submit(workers, _write_chunk, client, table, chunk, workers.stop)
                            state.written += _collect(workers, _MAX_IN_FLIGHT)
                            shown.advance(state.written)
                except (ValueError, TypeError) as exc:
                    raise type(exc)(f"batch {number}: {exc}; {state.outcome()}") from exc
                state.rows += batch.num_rows
            state.written += _collect(workers, 1)
            shown.advance(state.written)
        except BaseException:
            _abandon(workers)
            raise
        finally:
            if writer is not None:
                writer.close()
    shown.done()


def _submit(workers: _Workers, function: Any, *args: Any) -> None:
    workers.in_flight.append(workers.pool.submit(function, *args))


def _collect(workers: _Workers, limit: int) -> int:
    """Wait until fewer than ``limit`` calls are in flight; returns the items they wrote.

    Finished calls are collected in order as they complete, so a failure surfaces soon.
    """
    done = 0
    in_flight = workers.in_flight
    while in_flight and (len(in_flight) >= limit or in_flight[0].done()):
        done += in_flight.popleft().result()
    return done


def _abandon(workers: _Workers) -> None:
    """After a failure: drop the queued calls and wake the ones backing off."""
    workers.stop.set()
    for future in workers.in_flight:
        future.cancel()


def _backoff(attempt: int) -> float:
    """Full jitter: uniform between 0 and base * 2**attempt, capped."""
    return random.uniform(0, min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2**attempt))


def _write_chunk(
    client: Any, table: str, requests: list[dict[str, Any]], stop: threading.Event
) -> int:
    """One BatchWriteItem of up to 25 puts, resending until the server has taken them all.

    UnprocessedItems (the table is throttled or a partition is busy) and throttling errors
    that outlasted botocore's retries are resent with backoff; any other error propagates.
    Returns the number of items the server acknowledged.
    """
    written, attempt = 0, 0
    last_progress = time.monotonic()
    while requests:
        if stop.is_set():
            raise _Cancelled()
        try:
            response = client.batch_write_item(RequestItems={table: requests})
            left = response.get("UnprocessedItems", {}).get(table, [])
        except ClientError as exc:
            if _code(exc) not in _THROTTLING_CODES:
                raise
            left = requests  # a throttled call writes nothing
        if len(left) < len(requests):
            written += len(requests) - len(left)
            attempt, last_progress = 0, time.monotonic()
        requests = left
        if not requests:
            break
        if time.monotonic() - last_progress > _STALL_SECONDS:
            raise _Unprocessed(len(requests))
        attempt += 1
        if stop.wait(_backoff(attempt)):
            raise _Cancelled()
    return written


def _check_count(client: Any, table: str, customers: int | None, state: _State) -> None:
    expected = state.rows if customers is None else customers
    if state.written == state.rows == expected:
        return
    raise DynamoPublishError(
        f"Run {state.version} is incomplete in table {table} at {_where(client)}: "
        f"{state.written:,} items were acknowledged for {state.rows:,} rows read"
        + (f", {customers:,} customers expected" if customers is not None else "")
        + f"; {state.outcome()}."
    )


def _put_run_item(
    client: Any, runs: str, version: str, customers: int, columns: list[str], extra: dict
) -> None:
    previous = _get(client, runs, version) or {}
    item = {name: _s(value) for name, value in extra.items()}
    item.update(
        {
            RUN_ATTRIBUTE: _s(version),
            "status": _s("published"),
            "customers": {"N": str(customers)},
            "columns": _s(",".join(columns)),
            "started_at": previous.get("started_at", _s(iso_now())),
            "published_at": _s(iso_now()),
        }
    )
    client.put_item(TableName=runs, Item=item)


def _flip(client: Any, runs: str, version: str, previous: str | None) -> None:
    """Point readers at ``version`` if the pointer still names ``previous``."""
    values = {":version": _s(version), ":now": _s(iso_now())}
    names = {"#version": "version", "#previous": "previous_version", "#flipped": "flipped_at"}
    if previous is None:
        update = "SET #version = :version, #flipped = :now REMOVE #previous"
        condition = "attribute_not_exists(#version)"
    else:
        update = "SET #version = :version, #previous = :previous, #flipped = :now"
        condition = "#version = :previous"
        values[":previous"] = _s(previous)
    try:
        client.update_item(
            TableName=runs,
            Key={RUN_ATTRIBUTE: _s(POINTER_RUN)},
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if _code(exc) != "ConditionalCheckFailedException":
            raise
        now = (_get(client, runs, POINTER_RUN) or {}).get("version", {}).get("S")
        if now == version:
            return  # an attempt whose answer was lost had already switched
        raise DynamoPublishError(
            f"Another publisher switched the pointer in table {runs} at {_where(client)} to "
            f"{now or 'nothing'} while version {version} was being written (it named "
            f"{previous or 'nothing'} before); version {version} is written but readers get "
            f"{now or 'no forecasts'}: rerun to publish it."
        ) from None


# ---------------------------------------------------------------------------- retirement


def _retire(
    client: Any,
    forecasts: str,
    runs: str,
    old_runs: Sequence[str],
    spill: IO[bytes],
    customers: int,
    grace_seconds: int,
) -> None:
    """Give each old run's item of every customer of the new run an expiry time."""
    expires_at = int(time.time()) + grace_seconds
    for old in old_runs:
        spill.seek(0)
        reader = pa.ipc.open_stream(spill)
        shown = Progress(f"retiring DynamoDB run {old}", customers, "forecasts")
        touched = seen = 0
        with ThreadPoolExecutor(_RETIRE_THREADS, thread_name_prefix="clv-dynamodb-ttl") as pool:
            workers = _Workers(pool)
            try:
                for batch in reader:
                    ids = batch.column(0).to_pylist()
                    for at in range(0, len(ids), _RETIRE_IDS):
                        chunk = ids[at : at + _RETIRE_IDS]
                        _submit(
                            workers, _expire, client, forecasts, old, chunk, expires_at, workers
                        )
                        seen += len(chunk)
                        touched += _collect(workers, 2 * _RETIRE_THREADS)
                        shown.advance(seen)
                touched += _collect(workers, 1)
            except BaseException:
                _abandon(workers)
                raise
        shown.done()
        client.update_item(
            TableName=runs,
            Key={RUN_ATTRIBUTE: _s(old)},
            UpdateExpression="SET #retired = :now, #expire = :expire",
            ExpressionAttributeNames={"#retired": "retired_at", "#expire": "items_expire_at"},
            ExpressionAttributeValues={
                ":now": _s(iso_now()),
                ":expire": _s(iso_now(expires_at - time.time())),
            },
        )
        log.info(
            "run %s: %d of %d items expire in %d s (the rest were absent or already expiring)",
            old,
            touched,
            seen,
            grace_seconds,
        )


def _expire(
    client: Any, table: str, run: str, ids: list[str], expires_at: int, workers: _Workers
) -> int:
    """SET expires_at on (id, run) for each id whose item exists and has none yet."""
    touched = 0
    for customer_id in ids:
        attempt = 0
        last_progress = time.monotonic()
        while True:
            try:
                client.update_item(
                    TableName=table,
                    Key={ID_COLUMN: _s(customer_id), RUN_ATTRIBUTE: _s(run)},
                    UpdateExpression="SET #ttl = :expires",
                    ConditionExpression="attribute_exists(#id) AND attribute_not_exists(#ttl)",
                    ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE, "#id": ID_COLUMN},
                    ExpressionAttributeValues={":expires": {"N": str(expires_at)}},
                )
                touched += 1
                break
            except ClientError as exc:
                code = _code(exc)
                if code == "ConditionalCheckFailedException":
                    break  # a customer new in this run, or already expiring
                if code not in _THROTTLING_CODES:
                    raise
                if time.monotonic() - last_progress > _STALL_SECONDS:
                    raise _Unprocessed(len(ids)) from None
                attempt += 1
                if workers.stop.wait(_backoff(attempt)):
                    raise _Cancelled() from None
    return touched


# ---------------------------------------------------------------------------- read path

_DESERIALIZER = TypeDeserializer()


def _plain(value: object) -> object:
    """Decimals as int when integral, float otherwise; containers converted inside."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return type(value)(_plain(v) for v in value)
    return value


def read_forecast(client: Any, customer_id: str, prefix: str = DEFAULT_PREFIX) -> dict | None:
    """The app's read: GetItem of the pointer, then of the customer's item in that run.

    Returns the item's input columns as plain Python values (``run`` and ``expires_at``
    left out), or None when nothing is published or the customer is not in the current
    run. Both reads are strongly consistent. botocore errors propagate unchanged: the app
    decides how to degrade.
    """
    forecasts, runs = table_names(prefix)
    if not customer_id:
        return None  # a key is never empty
    pointer = _get(client, runs, POINTER_RUN)
    version = (pointer or {}).get("version", {}).get("S")
    if version is None:
        return None
    response = client.get_item(
        TableName=forecasts,
        Key={ID_COLUMN: _s(str(customer_id)), RUN_ATTRIBUTE: _s(version)},
        ConsistentRead=True,
    )
    item = response.get("Item")
    if item is None:
        return None
    return {
        name: _plain(_DESERIALIZER.deserialize(value))
        for name, value in item.items()
        if name not in (RUN_ATTRIBUTE, TTL_ATTRIBUTE)
    }
