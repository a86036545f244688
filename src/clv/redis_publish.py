"""Publish per-customer forecasts to Redis and switch readers to them atomically.

Key layout (``prefix`` defaults to ``clv``)::

    {prefix}:current                           string  the version readers use
    {prefix}:versions                          zset    version -> unix time it was first registered
    {prefix}:{version}:meta                    hash    customers, columns, published_at, flipped_at,
                                                       expires_at, plus the caller's metadata
    {prefix}:{version}:customer:{customer_id}  hash    one field per input column

A publish registers the version in ``{prefix}:versions``, writes every customer hash into the
version's own keyspace with non-transactional pipelines (one round trip per ``batch_size``
customers: HSET per customer, then one EXISTS over the batch to verify they are all there;
the RESP bytes are built by Arrow, see ``_encode_batch``), writes the meta hash, and only then
flips ``{prefix}:current`` with one Lua script that checks the meta count and returns the
previous pointer. A reader does one GET of the pointer and one HGETALL, so it sees one whole
version or the other, never a mix. After the flip the previous version's keys get a TTL of
``grace_seconds`` (readers holding the old pointer keep working), and versions that were never
current (abandoned by a failed publish) are deleted.

The caller picks ``version`` (for example ``2024-06-30_lgbm-v3``); a version must identify its
content. Republishing a version overwrites its hashes in place (HSET, never DEL), so publishing
the version that is already current never makes a hash disappear for a reader.

Value encoding (every Redis value is a string):

* floats: the shortest decimal string that parses back to the same float64/float32
  (Arrow's cast, the digits of Python's ``repr``; ``3.0`` is written ``3``, NaN ``nan``);
* integers and decimals: their decimal form; booleans: ``true``/``false``;
* dates: ISO ``YYYY-MM-DD``; timestamps: ISO ``YYYY-MM-DDTHH:MM:SS[.ffffff]`` at the column's
  precision, plus ``Z`` (UTC) or ``+HHMM`` when the column has a time zone;
* nulls: the field is omitted from the hash, so readers use ``.get(field)``. pandas turns NaN
  in float columns into nulls; NaN in Arrow input is written as ``nan``.

Assumptions: one publisher per prefix at a time, a non-cluster Redis (the pointer script touches
keys in several slots), and ``customer_id`` unique in the input. Duplicates inside one batch are
rejected; duplicates across batches would need O(customers) memory to detect, so they are not
(the dbt ``unique`` test on the forecast model guards that).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from itertools import chain, count
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from clv.progress import Progress
from clv.publishing import PublishOutcome, caller_metadata, iso_now

log = logging.getLogger(__name__)

ID_COLUMN = "customer_id"
REDIS_URL_ENV = "REDIS_URL"
DEFAULT_PREFIX = "clv"
DEFAULT_GRACE_SECONDS = 86_400
DEFAULT_BATCH_SIZE = 10_000

# One SCAN call walks this many buckets: few round trips, yet each call stays around a
# millisecond so readers are not stalled while old versions are retired.
_SCAN_COUNT = 5_000
# PING a pooled connection idle this long before reusing it, so a connection dropped by a
# firewall or server timeout is replaced instead of failing the next batch.
_HEALTH_CHECK_SECONDS = 30
# Versions end up inside key names and SCAN patterns: no ':' (layout) and no glob characters.
_VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
_META_RESERVED = frozenset(
    {"version", "customers", "columns", "published_at", "flipped_at", "expires_at"}
)

# Checking the count and moving the pointer in one script means a publisher whose meta was
# overwritten (or never written) can never flip; the old pointer comes back for the cleanup.
_FLIP_SCRIPT = """
local written = redis.call('HGET', KEYS[2], 'customers')
if written ~= ARGV[2] then
  return redis.error_reply('meta count ' .. tostring(written) .. ' differs from ' .. ARGV[2])
end
local previous = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'flipped_at', ARGV[3])
return previous
"""


# EXPIRE takes one key; doing a SCAN chunk in one script call means one reply per chunk
# instead of one per key (reading replies is what a Python client spends its time on), while
# a few thousand EXPIREs still run in about a millisecond, too short to stall readers.
_EXPIRE_SCRIPT = """
for i = 1, #KEYS do
  redis.call('EXPIRE', KEYS[i], ARGV[1])
end
return #KEYS
"""


class RedisPublishError(RuntimeError):
    """Redis could not be used; the message is one sentence, safe to show (no secrets)."""


@dataclass(frozen=True)
class PublishResult:
    """``previous_version`` is what readers got before (equal to ``version`` on a rerun);
    ``seconds`` is the wall time of the whole publish, retiring old versions included."""

    version: str
    previous_version: str | None
    customers: int
    seconds: float


# ---------------------------------------------------------------------------- key layout


def pointer_key(prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:current"


def versions_key(prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:versions"


def meta_key(prefix: str, version: str) -> str:
    return f"{prefix}:{version}:meta"


def customer_key(prefix: str, version: str, customer_id: str) -> str:
    return f"{prefix}:{version}:customer:{customer_id}"


def keyspace_pattern(prefix: str, version: str) -> str:
    """SCAN MATCH pattern for every key of one version (customers and meta)."""
    return f"{_glob_escape(prefix)}:{_glob_escape(version)}:*"


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


# ---------------------------------------------------------------------------- connection


def mask_url(url: str) -> str:
    """The URL with its password (or lone user part, often a password) replaced by ***."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable Redis URL>"
    if parts.username is None and parts.password is None:
        return url
    if ":" in host:
        host = f"[{host}]"
    hostport = f"{host}:{port}" if port is not None else host
    userinfo = f"{parts.username or ''}:***" if parts.password is not None else "***"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{hostport}"))


def client_for(url: str, timeout_seconds: float = 5.0) -> redis.Redis:
    """A client for url, not connected yet: a URL redis-py cannot read is refused here."""
    try:
        return redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            health_check_interval=_HEALTH_CHECK_SECONDS,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=1),
        )
    except ValueError as exc:
        reason = _scrub(str(exc), _url_secrets(url))
        raise RedisPublishError(f"{mask_url(url)} is not a usable Redis URL ({reason}).") from None


def connect(url: str | None = None, timeout_seconds: float = 5.0) -> redis.Redis:
    """A client for ``url`` (default: $REDIS_URL), checked with a PING.

    Every socket operation is bounded by ``timeout_seconds``; a failed command is retried once
    (after a short backoff) because a dropped idle connection is common and harmless, while
    more retries would only delay the error a batch job should report.
    """
    if url is None:
        url = os.environ.get(REDIS_URL_ENV, "")
        if not url:
            raise RedisPublishError(
                f"No Redis URL was given and ${REDIS_URL_ENV} is not set "
                "(expected e.g. redis://:PASSWORD@127.0.0.1:6379/0)."
            )
    client = client_for(url, timeout_seconds)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        raise RedisPublishError(_describe_failure(client, exc) + ".") from exc
    return client


def _url_secrets(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        return [s for s in (parts.password, parts.username) if s]
    except ValueError:
        return []


def _client_secrets(client: redis.Redis) -> list[str]:
    kwargs = client.connection_pool.connection_kwargs
    return [s for s in (kwargs.get("password"), kwargs.get("username")) if s]


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _where(client: redis.Redis) -> str:
    """Where the client points, rebuilt from its settings so no credential can leak."""
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}"
    scheme = "rediss" if issubclass(pool.connection_class, redis.SSLConnection) else "redis"
    host, port, db = kwargs.get("host", "localhost"), kwargs.get("port", 6379), kwargs.get("db", 0)
    return f"{scheme}://{host}:{port}/{db}"


def _describe_failure(client: redis.Redis, exc: redis.RedisError) -> str:
    """'Redis at X <what went wrong> (<driver reason>)', without a final period."""
    where = _where(client)
    reason = " ".join(_scrub(str(exc), _client_secrets(client)).split()).rstrip(".")
    reason = reason or type(exc).__name__
    if isinstance(
        exc, redis.AuthenticationError | redis.exceptions.AuthenticationWrongNumberOfArgsError
    ):
        return f"Redis at {where} rejected the credentials ({reason})"
    if isinstance(exc, redis.exceptions.NoPermissionError):
        return f"Redis at {where} denied a command to this user ({reason})"
    if isinstance(exc, redis.TimeoutError):
        timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
        limit = f" within {timeout:g} s" if isinstance(timeout, int | float) else ""
        # A server without TLS waits for a command and never answers the TLS handshake.
        hint = ""
        if where.startswith("rediss://") and "connecting" in reason:
            hint = "; a server without TLS never answers rediss://: use redis:// for one"
        return f"Redis at {where} timed out: no answer{limit} ({reason}){hint}"
    if isinstance(exc, redis.exceptions.BusyLoadingError):
        return f"Redis at {where} is still loading its data set ({reason})"
    if isinstance(exc, redis.ConnectionError):
        return f"Redis at {where} is unreachable ({reason})"
    return f"Redis at {where} refused a command ({reason})"


# ---------------------------------------------------------------------------- input


def _record_batches(
    batches: Iterable[pa.RecordBatch | pa.Table | pd.DataFrame], batch_size: int
) -> Iterator[pa.RecordBatch]:
    """Non-empty RecordBatches of at most ``batch_size`` rows, converted lazily."""
    for item in batches:
        if isinstance(item, pd.DataFrame):
            if item.index.name == ID_COLUMN and ID_COLUMN not in item.columns:
                item = item.reset_index()
            item = pa.Table.from_pandas(item, preserve_index=False)
        if isinstance(item, pa.Table):
            chunks: Iterable[pa.RecordBatch] = item.to_batches(max_chunksize=batch_size)
        elif isinstance(item, pa.RecordBatch):
            starts = range(0, item.num_rows, batch_size)
            chunks = (item.slice(start, batch_size) for start in starts)
        else:
            raise TypeError(
                "publish_predictions expects pyarrow RecordBatches/Tables or pandas DataFrames, "
                f"got {type(item).__name__}"
            )
        yield from (chunk for chunk in chunks if chunk.num_rows)


def _check_columns(names: Sequence[str]) -> list[str]:
    if ID_COLUMN not in names:
        shown = ", ".join(names) or "none"
        raise ValueError(
            f"the predictions have no {ID_COLUMN!r} column (columns: {shown}); "
            "it is needed to name each customer's hash"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"the predictions have duplicate column names: {list(names)}")
    return list(names)


def _strings(column: pa.Array, name: str) -> pa.Array:
    """One column as an Arrow string array (nulls kept) in the documented encoding."""
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_string(column.type):
        return column
    try:
        text = pc.cast(column, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid) as exc:
        raise TypeError(
            f"column {name!r} has type {column.type}, which has no string form; "
            "cast or drop it before publishing"
        ) from exc
    if pa.types.is_timestamp(column.type):
        # Arrow separates date and time with a space; ISO 8601 readers expect 'T'.
        text = pc.replace_substring(text, pattern=" ", replacement="T", max_replacements=1)
    return text


def _data(strings: pa.Array) -> pa.Buffer:
    """The values of a string array laid end to end, without copying them."""
    _, offset_buffer, data = strings.buffers()
    offsets = pa.Array.from_buffers(
        pa.int32(), len(strings) + 1, [None, offset_buffer], offset=strings.offset
    )
    first, last = offsets[0].as_py(), offsets[-1].as_py()
    return data.slice(first, last - first)


def _byte_length(strings: pa.Array) -> pa.Array:
    return pc.cast(pc.binary_length(strings), pa.string())


def _encode_batch(batch: pa.RecordBatch, key_prefix: str, persist: bool) -> list[pa.Buffer | bytes]:
    """The RESP bytes of one pipeline: HSET (+ PERSIST) per row, then one EXISTS over all keys.

    Built column-wise in Arrow (one string per row, whose buffer is the wire payload) because
    redis-py packing each argument in Python costs more than the rest of a publish together.
    A null value drops its field/value pair, so such rows have a smaller argument count.
    """
    names = batch.schema.names
    ids = batch.column(names.index(ID_COLUMN))
    if ids.null_count:
        raise ValueError(f"{ids.null_count} rows have a null {ID_COLUMN}")
    ids = _strings(ids, ID_COLUMN)
    repeats = len(ids) - pc.count_distinct(ids).as_py()
    if repeats:
        raise ValueError(f"{repeats} {ID_COLUMN} values repeat within one batch")
    keys = pc.binary_join_element_wise(key_prefix, ids, "")
    key_bulks = pc.binary_join_element_wise("$", _byte_length(keys), "\r\n", keys, "\r\n", "")

    fixed_args = 2  # HSET key
    optional_args: list[pa.Array] = []
    pairs: list[pa.Array | str] = []
    for name, column in zip(names, batch.columns, strict=True):
        values = _strings(column, name)
        pair = [_resp_bulk(name).decode(), "$", _byte_length(values), "\r\n", values, "\r\n"]
        if values.null_count:
            optional_args.append(pc.multiply(pc.cast(pc.is_valid(values), pa.int64()), 2))
            pairs.append(pc.fill_null(pc.binary_join_element_wise(*pair, ""), ""))
        else:
            fixed_args += 2
            pairs += pair
    argc: pa.Array | str = str(fixed_args)
    if optional_args:
        counts = optional_args[0]
        for more in optional_args[1:]:
            counts = pc.add(counts, more)
        argc = pc.cast(pc.add(counts, fixed_args), pa.string())
    persist_parts = ["*2\r\n$7\r\nPERSIST\r\n", key_bulks] if persist else []
    rows = pc.binary_join_element_wise(
        "*", argc, "\r\n$4\r\nHSET\r\n", key_bulks, *pairs, *persist_parts, ""
    )
    exists = b"*%d\r\n$6\r\nEXISTS\r\n" % (len(keys) + 1)
    return [_data(rows), exists, _data(key_bulks)]


def _resp_bulk(arg: str | bytes | int) -> bytes:
    data = arg if isinstance(arg, bytes) else str(arg).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def _encode(commands: Iterable[Sequence[str | bytes | int]]) -> list[bytes]:
    """RESP bytes for a few thousand small commands (retirement sweeps, not the hot path)."""
    out = []
    for command in commands:
        out.append(b"*%d\r\n" % len(command))
        out.extend(_resp_bulk(arg) for arg in command)
    return [b"".join(out)]


def _pipelined(
    client: redis.Redis, payload: Sequence[pa.Buffer | bytes], replies: int
) -> list[object]:
    """Send pre-encoded commands in one round trip and read their replies.

    Every caller sends commands that are safe to replay (HSET of the same values, PERSIST,
    EXISTS, EXPIRE, UNLINK, SCAN), so the client's retry policy may resend the whole payload.
    """
    pool = client.connection_pool
    connection = pool.get_connection()

    def roundtrip() -> list[object]:
        connection.send_packed_command(payload)
        return [connection.read_response() for _ in range(replies)]

    try:
        return connection.retry.call_with_retry(roundtrip, lambda _: connection.disconnect())
    except BaseException:
        connection.disconnect()  # replies may be half read: this stream is unusable
        raise
    finally:
        pool.release(connection)


def _text(value: str | bytes | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


# ---------------------------------------------------------------------------- publish


def publish_predictions(
    client: redis.Redis,
    batches: Iterable[pa.RecordBatch | pa.Table | pd.DataFrame],
    version: str,
    *,
    prefix: str = DEFAULT_PREFIX,
    metadata: Mapping[str, str] | None = None,
    grace_seconds: int = DEFAULT_GRACE_SECONDS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    customers: int | None = None,
) -> PublishResult:
    """Write every row as ``{prefix}:{version}:customer:{id}``, then make ``version`` current.

    customers, the number of rows, only tells the progress lines how far it is.

    Raises RedisPublishError (one sentence, no secrets) when Redis is unreachable, times out,
    rejects the credentials or a command; ValueError/TypeError for unusable input. In every
    such case the pointer still names the previously published version.
    """
    started = time.monotonic()
    if not _VERSION_RE.fullmatch(version):
        raise ValueError(
            f"version {version!r} must be 1-128 characters from A-Z a-z 0-9 . _ + - "
            "(it becomes part of every key name)"
        )
    if not prefix or _glob_escape(prefix) != prefix:
        raise ValueError(f"prefix {prefix!r} must be non-empty and free of * ? [ ] \\")
    if grace_seconds <= 0 or batch_size <= 0:
        raise ValueError("grace_seconds and batch_size must be positive")
    extra = caller_metadata(metadata, _META_RESERVED)

    pending = _record_batches(batches, batch_size)
    first = next(pending, None)
    if first is None:
        raise ValueError("there are no prediction rows; refusing to switch readers to nothing")
    columns = _check_columns(first.schema.names)

    progress = PublishOutcome(
        version, "customers", "check the pointer key once Redis answers again"
    )
    try:
        persist = _register(client, prefix, version, progress)
        key_prefix = customer_key(prefix, version, "")
        encoded = _encode_ahead(chain([first], pending), columns, key_prefix, persist)
        shown = Progress(f"publishing to Redis as {version}", customers, "forecasts")
        with closing(encoded):
            for number in count(1):
                try:
                    item = next(encoded, None)
                except (ValueError, TypeError) as exc:
                    raise type(exc)(f"batch {number}: {exc}; {progress.outcome()}") from exc
                if item is None:
                    break
                progress.written += _write_batch(client, item[1], item[0], persist)
                shown.advance(progress.written)
        shown.done()
        _write_meta(client, prefix, version, progress.written, columns, extra)
        progress.flipping = True
        previous = _flip(client, prefix, version, progress.written)
        progress.flipping = False
    except redis.RedisError as exc:
        # Only a lost connection leaves the flip in doubt; an error reply means it did not run.
        progress.flipping = progress.flipping and not isinstance(exc, redis.ResponseError)
        message = f"{_describe_failure(client, exc)}{progress.after()}; {progress.outcome()}."
        raise RedisPublishError(message) from exc

    log.info(
        "%s:%s is live with %d customers after %.1f s",
        prefix,
        version,
        progress.written,
        time.monotonic() - started,
    )
    try:
        _retire_versions(client, prefix, version, previous, grace_seconds)
    except redis.RedisError as exc:
        # The new version is live; whatever was left is retried by the next publish.
        log.warning(
            "%s while retiring old versions; version %s is live, cleanup continues next publish",
            _describe_failure(client, exc),
            version,
        )
    result = PublishResult(version, previous, progress.written, time.monotonic() - started)
    log.info(
        "published %d customers as %s:%s in %.1f s (previous version: %s)",
        result.customers,
        prefix,
        version,
        result.seconds,
        previous,
    )
    return result


def _encode_ahead(
    batches: Iterable[pa.RecordBatch], columns: list[str], key_prefix: str, persist: bool
) -> Iterator[tuple[int, list[pa.Buffer | bytes]]]:
    """(rows, payload) per batch, encoding the next batch while the current one is sent.

    Arrow kernels release the GIL, so a worker thread encodes in parallel with the main
    thread reading replies, which is where a publish spends most of its time.
    """

    def encode(batch: pa.RecordBatch) -> tuple[int, list[pa.Buffer | bytes]]:
        if batch.schema.names != columns:
            raise ValueError(f"its columns {batch.schema.names} differ from {columns}")
        return batch.num_rows, _encode_batch(batch, key_prefix, persist)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="clv-encode") as worker:
        ahead: Future[tuple[int, list[pa.Buffer | bytes]]] | None = None
        for batch in batches:
            job = worker.submit(encode, batch)
            if ahead is not None:
                yield ahead.result()
            ahead = job
        if ahead is not None:
            yield ahead.result()


def _register(client: redis.Redis, prefix: str, version: str, progress: PublishOutcome) -> bool:
    """Record the version before writing (so a crash leaves a findable partial).

    Returns True when the version's keyspace may already exist; its keys are then PERSISTed
    as they are rewritten, because a retired version being republished still has a TTL.
    """
    pipe = client.pipeline(transaction=False)
    pipe.get(pointer_key(prefix))
    pipe.exists(meta_key(prefix, version))
    pipe.zadd(versions_key(prefix), {version: time.time()}, nx=True)
    current, meta_exists, added = pipe.execute()
    progress.previous, progress.previous_known = _text(current), True
    return _text(current) == version or bool(meta_exists) or not added


def _write_batch(
    client: redis.Redis, payload: Sequence[pa.Buffer | bytes], rows: int, persist: bool
) -> int:
    """Send one encoded batch; the trailing EXISTS proves every hash is there."""
    replies = _pipelined(client, payload, rows * (2 if persist else 1) + 1)
    found = replies[-1]
    if found != rows:
        raise redis.ResponseError(
            f"only {found} of {rows} customer hashes just written exist "
            "(is a maxmemory-policy evicting keys?)"
        )
    return rows


def _write_meta(
    client: redis.Redis,
    prefix: str,
    version: str,
    customers: int,
    columns: list[str],
    extra: dict[str, str],
) -> None:
    key = meta_key(prefix, version)
    fields = {
        **extra,
        "version": version,
        "customers": str(customers),
        "columns": ",".join(columns),
        "published_at": iso_now(),
    }
    pipe = client.pipeline(transaction=False)
    pipe.hdel(key, "expires_at")  # a republished retired version is live again
    pipe.hset(key, mapping=fields)
    pipe.persist(key)
    pipe.execute()


def _flip(client: redis.Redis, prefix: str, version: str, customers: int) -> str | None:
    script = client.register_script(_FLIP_SCRIPT)
    previous = script(
        keys=[pointer_key(prefix), meta_key(prefix, version)],
        args=[version, str(customers), iso_now()],
    )
    return _text(previous)


# ---------------------------------------------------------------------------- retirement


def _retire_versions(
    client: redis.Redis, prefix: str, live: str, previous: str | None, grace_seconds: int
) -> None:
    """Give the previous version a TTL; delete versions that never became current.

    A version that was once current keeps (or gets) a TTL, since a reader may still hold its
    pointer; a version never flipped has no readers and can go at once, which also frees the
    memory of partial keyspaces left by failed publishes.
    """
    known = {_text(v) for v in client.zrange(versions_key(prefix), 0, -1)} | {previous}
    for old in sorted(v for v in known if v is not None and v != live):
        if old == previous:
            _expire_keyspace(client, prefix, old, grace_seconds)
            continue
        flipped_at, expires_at = client.hmget(meta_key(prefix, old), "flipped_at", "expires_at")
        if flipped_at is None:
            # Never current, or its grace ended and the meta already expired.
            pattern = keyspace_pattern(prefix, old)
            removed = _sweep(client, pattern, lambda keys: [("UNLINK", *keys)])
            client.zrem(versions_key(prefix), old)
            log.info("deleted %d keys of unused version %s:%s", removed, prefix, old)
        elif expires_at is None:
            # Its retirement was interrupted (e.g. the publisher died right after the flip).
            _expire_keyspace(client, prefix, old, grace_seconds)


def _expire_keyspace(client: redis.Redis, prefix: str, version: str, seconds: int) -> None:
    pattern = keyspace_pattern(prefix, version)
    touched = _sweep(
        client, pattern, lambda keys: [("EVAL", _EXPIRE_SCRIPT, len(keys), *keys, seconds)]
    )
    # Marking the meta last means an interrupted pass is redone by the next publish.
    pipe = client.pipeline(transaction=False)
    pipe.hset(meta_key(prefix, version), "expires_at", iso_now(seconds))
    pipe.expire(meta_key(prefix, version), seconds)
    pipe.execute()
    log.info("version %s:%s (%d keys) expires in %d s", prefix, version, touched, seconds)


def _sweep(
    client: redis.Redis,
    pattern: str,
    commands_for: Callable[[list[str]], list[tuple[str | int, ...]]],
) -> int:
    """SCAN ``pattern`` and run ``commands_for`` each chunk of keys; returns keys seen.

    The next SCAN rides in the same round trip as the commands for the current chunk. SCAN
    may repeat keys; EXPIRE/UNLINK are idempotent, so are the commands if a retry resends.
    """
    cursor, keys = client.scan(0, match=pattern, count=_SCAN_COUNT)
    seen = 0
    while True:
        commands = commands_for(keys) if keys else []
        if cursor:
            commands.append(("SCAN", cursor, "MATCH", pattern, "COUNT", _SCAN_COUNT))
        replies = _pipelined(client, _encode(commands), len(commands)) if commands else []
        seen += len(keys)
        if not cursor:
            return seen
        next_cursor, keys = replies[-1]  # type: ignore[misc]
        cursor = int(next_cursor)
        keys = [_text(key) for key in keys]


# ---------------------------------------------------------------------------- read path


def read_forecast(
    client: redis.Redis, customer_id: str | int, *, prefix: str = DEFAULT_PREFIX
) -> dict[str, str] | None:
    """The app's read: GET the pointer, HGETALL that version's hash; None if absent.

    Redis errors propagate unchanged: the app decides how to degrade.
    """
    version = _text(client.get(pointer_key(prefix)))
    if version is None:
        return None
    fields = client.hgetall(customer_key(prefix, version, str(customer_id)))
    if not fields:
        return None
    return {_text(k): _text(v) for k, v in fields.items()}  # type: ignore[misc]
