"""Following a job to its end with a live progress line.

The job is read with ``get_job`` every ``interval`` seconds (any worker answers:
the job store is shared).  The line shows the job's ``phase`` (with how long it
has been in it) and ``deadline`` where the workers record them, else its status,
and the time since it started.  On a terminal it is redrawn in place; otherwise
a line is written only when the phase or status changes, so a log stays short.
It goes to stderr: stdout keeps the final record alone (``-f json`` stays
machine-readable).
"""

from __future__ import annotations

import datetime
import threading
import typing

from manila_protector import jobs

#: Seconds between two reads of the job.
DEFAULT_INTERVAL = 1.0


def _parse(value: typing.Any) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def describe(record: dict[str, typing.Any], now: datetime.datetime) -> str:
    """One line of progress for ``record`` at ``now``."""
    state = record.get("phase") or record.get("status") or "?"
    parts = [f"job {record.get('job_id')}", str(record.get("operation")), state]
    since = _parse(record.get("phase_started_at"))
    if record.get("phase") and since:
        parts[-1] += f" for {_duration((now - since).total_seconds())}"
    started = _parse(record.get("started_at")) or _parse(record.get("created_at"))
    finished = _parse(record.get("finished_at"))
    if started:
        parts.append(f"elapsed {_duration(((finished or now) - started).total_seconds())}")
    deadline = _parse(record.get("deadline"))
    if deadline and not finished:
        parts.append(f"deadline {deadline.strftime('%H:%M:%SZ')} "
                     f"(in {_duration((deadline - now).total_seconds())})")
    return "  ".join(parts)


def follow(get: typing.Callable[[], dict[str, typing.Any]], record: dict[str, typing.Any],
           stream: typing.TextIO, *, interval: float = DEFAULT_INTERVAL,
           stop: threading.Event | None = None) -> dict[str, typing.Any]:
    """Read the job with ``get`` until it finishes, drawing progress on ``stream``.

    :param get: returns the job's current record (``get_job``).
    :param record: the record as accepted.
    :returns: the final record.
    :raises exception.ProtectorError: ``get`` failed (the job goes on without us).
    """
    pause = stop or threading.Event()
    live = bool(getattr(stream, "isatty", lambda: False)())
    last = None
    while True:
        now = datetime.datetime.now(datetime.UTC)
        line = describe(record, now)
        state = (record.get("status"), record.get("phase"))
        if live:
            stream.write("\r\x1b[K" + line)
            stream.flush()
        elif state != last:
            stream.write(line + "\n")
            stream.flush()
        last = state
        if record.get("status") in jobs.TERMINAL:
            if live:
                stream.write("\n")
                stream.flush()
            return record
        if pause.wait(interval):
            return record
        record = get()
