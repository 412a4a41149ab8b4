"""What every command shares: the error to exit status rule, and how a job record shows."""

from __future__ import annotations

import json
import typing

from cliff import columns
import oslo_messaging

from manila_protector import exception

#: Exit status of a job that failed, and of a usage or connection error.
EXIT_FAILED = 1
EXIT_USAGE = 2

#: A job record's fields, in the order they are shown (``phase`` and the fields after it
#: appear where the workers record them).
RECORD_FIELDS = ("job_id", "operation", "share_id", "project_id", "status", "phase",
                 "phase_started_at", "deadline", "result", "error", "created_at",
                 "started_at", "finished_at", "host", "request_id")


class JSONColumn(columns.FormattableColumn):
    """A nested value: JSON in a table, the value itself in json/yaml output."""

    def human_readable(self) -> str:
        return "" if self._value is None else json.dumps(self._value, indent=1, sort_keys=True)

    def machine_readable(self) -> typing.Any:
        return self._value


def record_columns(record: dict[str, typing.Any]) -> tuple[tuple[str, ...], tuple[typing.Any, ...]]:
    """A job record as cliff's ShowOne wants it (the fields this worker records)."""
    names = tuple(name for name in RECORD_FIELDS if name in record)
    values = tuple(JSONColumn(record[name]) if isinstance(record[name], dict | list)
                   else record[name] for name in names)
    return names, values


class Errors:
    """Mixed into every command: a refused request or a connection error is one line on
    stderr and exit status 2 (cliff alone would log it and exit 1, the status of a failed
    job)."""

    app: typing.Any

    def run(self, parsed_args: typing.Any) -> int:
        try:
            return super().run(parsed_args)  # type: ignore[misc]
        except exception.ProtectorError as exc:
            self.app.stderr.write(f"{self.app.NAME}: error: {exc} [{exc.code}]\n")
            return EXIT_USAGE
        except oslo_messaging.MessagingException as exc:
            # The type alone: some of oslo.messaging's messages quote the transport URL.
            self.app.stderr.write(f"{self.app.NAME}: error: the message bus failed: "
                                  f"{type(exc).__name__} [worker_unavailable]\n")
            return EXIT_USAGE
