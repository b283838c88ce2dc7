"""When a backing service is away, not broken: PostgreSQL down or restarting, the task broker unreachable.

Both end by themselves, so what depends on them answers differently than to a bug: a web request gets a 503 with
Retry-After (portal/middleware.py, infra/api/errors.py), and a worker task hands its work back once the
database answers again instead of leaving it leased (invoicing/stamp_queue.py, invoicing/delivery_queue.py,
tickets/ingest/lifecycle.py).

Only errors of reaching the service count. A lock or statement timeout, a deadlock or a serialization failure
comes from a database that is up and answering: it stays an error of the request (a 500 if nothing handles it).
"""

from __future__ import annotations

import logging
import time

from django.db import Error as DatabaseError
from django.db import InterfaceError, OperationalError, connections

log = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 10
_logged_at = 0.0

# SQLSTATE classes and codes of a server that cannot be reached or is going away (PostgreSQL, appendix A):
# 08 connection exception; 53 insufficient resources (too many connections, out of memory, disk full);
# 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now (starting up or shutting down).
_UNAVAILABLE_CLASSES = ("08", "53")
_UNAVAILABLE_CODES = ("57P01", "57P02", "57P03")
_SQLITE_UNAVAILABLE = ("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_NOTADB")


def _chain(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def database_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc`` says the database cannot be reached (refused, closed, shutting down or starting up),
    as opposed to an error of a database that answered."""
    for error in _chain(exc):
        if not isinstance(error, (OperationalError, InterfaceError)):
            continue
        driver = error.__cause__ if error.__cause__ is not None else error
        sqlstate = getattr(driver, "sqlstate", None) or getattr(driver, "pgcode", None)
        sqlite_name = getattr(driver, "sqlite_errorname", None)
        if sqlite_name is not None:
            return sqlite_name.startswith(_SQLITE_UNAVAILABLE)
        if sqlstate:
            return sqlstate[:2] in _UNAVAILABLE_CLASSES or sqlstate in _UNAVAILABLE_CODES
        if isinstance(error, InterfaceError):
            # psycopg2's "connection already closed"; not an interface misuse such as a closed cursor.
            return "connection" in str(error).lower()
        # No SQLSTATE: the client library's own verdict on the connection (refused, reset, closed, timed out).
        return True
    return False


def broker_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc`` says the task broker (Redis) cannot be reached."""
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - redis is a dependency; the ORM broker fails as the database does
        return False
    return any(isinstance(error, (RedisConnectionError, RedisTimeoutError)) for error in _chain(exc))


def storage_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc`` says the S3-compatible file store cannot be reached or answered 5xx (busy, restarting)."""
    try:
        from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
    except ImportError:  # pragma: no cover - only with STORAGE_S3_BUCKET, which needs boto3
        return False
    for error in _chain(exc):
        if isinstance(error, (ConnectionError, HTTPClientError)):  # refused, reset, timed out, closed
            return True
        if isinstance(error, ClientError):
            return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0) >= 500
    return False


def service_unavailable(exc: BaseException | None) -> bool:
    """The database, the broker or the file store is away: a 503 for a request, a hand-back for a task."""
    return database_unavailable(exc) or broker_unavailable(exc) or storage_unavailable(exc)


def note_unavailable(exc: BaseException, where: str) -> None:
    """Log an outage met by a request as one warning every LOG_EVERY_SECONDS per process, not a traceback per
    request: while PostgreSQL restarts, every request meets it."""
    global _logged_at
    now = time.monotonic()
    if now - _logged_at >= LOG_EVERY_SECONDS:
        _logged_at = now
        log.warning("service unavailable (%s: %s) at %s: answering 503 until it is back",
                    type(exc).__name__, str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "", where)


def database_wait(seconds: float, *, every: float = 1.0, using: str = "default") -> bool:
    """Wait up to ``seconds`` for the database to answer again; True once it does.

    For a worker task that PostgreSQL left mid-way: it still holds work (a lease, a queue slot) that only it
    knows of, and can hand it back as soon as the database is back instead of leaving it to expire. The broken
    connection is dropped first, so the next query opens a new one.
    """
    connection = connections[using]
    if connection.in_atomic_block:  # the transaction is lost with its connection: its owner must roll back first
        return False
    deadline = time.monotonic() + seconds
    while True:
        try:
            connection.close()
        except DatabaseError:
            pass  # closing a dead socket may complain; the wrapper forgets it either way
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except DatabaseError as exc:
            if not database_unavailable(exc) or time.monotonic() >= deadline:
                return False
        time.sleep(min(every, max(0.0, deadline - time.monotonic())))


def hand_back_after_outage(exc: BaseException, hand_back, *, wait_seconds: float, what: str) -> bool:
    """In a worker task's ``except``: if ``exc`` is the database gone away, wait for it (up to ``wait_seconds``,
    no longer than the lease the work is under) and call ``hand_back()`` to return the work to its queue now
    rather than when its lease runs out. True if it did; the caller re-raises either way, so the task still
    counts as failed. Any other error is left alone: a lease's expiry then paces the retries of a bug.
    """
    if not database_unavailable(exc) or getattr(exc, "_outage_waited_out", False):
        return False
    log.warning("%s: the database went away (%s); waiting up to %.0f s to hand the work back", what,
                type(exc).__name__, wait_seconds)
    if not database_wait(wait_seconds):
        log.warning("%s: the database is still away; the work waits for its lease to run out", what)
        exc._outage_waited_out = True  # an outer handler of the same error does not wait as long again
        return False
    try:
        hand_back()
    except Exception:  # noqa: BLE001 - the lease still runs out and the sweeper repairs it
        log.exception("%s: could not hand the work back; it waits for its lease to run out", what)
        return False
    log.warning("%s: the database is back; work handed back to its queue", what)
    return True
