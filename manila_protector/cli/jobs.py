"""Job commands: ``protect``, ``restore``, ``delete``, ``verify``, ``job show``, ``job list``.

A job command sends its job with a fresh ``job_id`` (or ``--job-id``: sending the
same one again is always safe, see ``doc/rpc.rst``), then follows it to its end
with a progress line on stderr and prints the final record; exit status 0 when
it succeeded, 1 when it failed.  ``--no-wait`` prints the record as accepted
(``-f value -c job_id`` prints the id alone).
"""

from __future__ import annotations

import argparse
import datetime
import typing
import uuid

from cliff import lister
from cliff import show

from manila_protector import exception
from manila_protector import jobs
from manila_protector.cli import base
from manila_protector.cli import progress


def _uuid(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {text!r}") from None


def _since(text: str) -> str:
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time (e.g. 2026-01-31T22:00:00Z): {text!r}") from None
    return moment.isoformat()


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError("must be between 1 and 1000")
    return value


class JobCommand(base.Errors, show.ShowOne):
    """Send a job and follow it (the shared part of protect, restore, delete, verify)."""

    operation = ""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--job-id", metavar="<uuid>", type=_uuid,
                            help="The job's id (default: a new one). The same id again "
                                 "never repeats the job: use it to resume following.")
        parser.add_argument("--no-wait", action="store_true",
                            help="Print the job as accepted and return; follow it with "
                                 "'job show' or 'events --job'.")
        parser.add_argument("--poll-interval", metavar="<seconds>", type=float,
                            default=progress.DEFAULT_INTERVAL,
                            help="Seconds between two reads of the job (default: "
                                 "%(default)s).")
        self.add_job_arguments(parser)
        return parser

    def add_job_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The operation's own arguments."""

    def submit(self, parsed_args: argparse.Namespace, job_id: str) -> dict[str, typing.Any]:
        """Send the job with ``wait=False``; its record as accepted."""
        raise NotImplementedError

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[typing.Any, typing.Any]:
        connection = self.app.connection
        job_id = parsed_args.job_id or str(uuid.uuid4())
        record = self.submit(parsed_args, job_id)
        self.failed = False
        if not parsed_args.no_wait:
            client, ctxt = connection.client, connection.context
            record = progress.follow(lambda: client.get_job(ctxt, job_id), record,
                                     self.app.stderr, interval=parsed_args.poll_interval)
            self.failed = record.get("status") == jobs.FAILED
        return base.record_columns(record)

    def run(self, parsed_args: argparse.Namespace) -> int:
        status = super().run(parsed_args)
        return base.EXIT_FAILED if status == 0 and getattr(self, "failed", False) else status

    def saved_from(self, protect_job_id: str) -> tuple[str, dict[str, typing.Any]]:
        """The share and saved info of a protect job that succeeded.

        :raises exception.InvalidRequest: the job is not a protect that succeeded.
        """
        connection = self.app.connection
        protected = connection.client.get_job(connection.context, protect_job_id)
        if protected.get("operation") != jobs.PROTECT or protected.get("status") != jobs.SUCCEEDED:
            raise exception.InvalidRequest(
                f"job {protect_job_id} is a {protected.get('operation')} "
                f"({protected.get('status')}): {self.operation} needs a protect job that "
                "succeeded", details={"field": "protect_job"})
        return protected["share_id"], protected["result"]


class Protect(JobCommand):
    """Snapshot a share (its access rules and metadata are saved with it)."""

    operation = jobs.PROTECT

    def add_job_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("share", metavar="<share-id>", type=_uuid, help="The share.")
        parser.add_argument("--name", metavar="<name>",
                            help="The snapshot's name (default: protect-<UTC time>).")
        parser.add_argument("--description", metavar="<text>", default="",
                            help="The snapshot's description.")
        parser.add_argument("--force", action="store_true",
                            help="Snapshot even a share that is busy (Manila's force).")

    def submit(self, parsed_args: argparse.Namespace, job_id: str) -> dict[str, typing.Any]:
        connection = self.app.connection
        name = parsed_args.name or "protect-" + datetime.datetime.now(
            datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        return connection.client.protect(
            connection.context, job_id, parsed_args.share,
            {"snapshot_name": name, "description": parsed_args.description,
             "force": parsed_args.force}, wait=False)


class Restore(JobCommand):
    """Restore a protect job's snapshot into a new share (or revert the share in place)."""

    operation = jobs.RESTORE

    def add_job_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("protect_job", metavar="<protect-job-id>", type=_uuid,
                            help="The protect job whose snapshot to restore.")
        parser.add_argument("--name", metavar="<name>", help="The new share's name.")
        parser.add_argument("--description", metavar="<text>",
                            help="The new share's description.")
        parser.add_argument("--in-place", action="store_true",
                            help="Revert the protected share to the snapshot (it must be "
                                 "the share's latest) instead of making a new share.")
        parser.add_argument("--no-access-rules", action="store_true",
                            help="Do not re-apply the saved access rules.")

    def submit(self, parsed_args: argparse.Namespace, job_id: str) -> dict[str, typing.Any]:
        share_id, saved = self.saved_from(parsed_args.protect_job)
        parameters: dict[str, typing.Any] = {}
        if parsed_args.name:
            parameters["restore_name"] = parsed_args.name
        if parsed_args.description:
            parameters["restore_description"] = parsed_args.description
        if parsed_args.in_place:
            parameters["share_id"] = share_id
        if parsed_args.no_access_rules:
            parameters["restore_access_rules"] = False
        connection = self.app.connection
        return connection.client.restore(connection.context, job_id, share_id, saved,
                                         parameters, wait=False)


class Delete(JobCommand):
    """Delete a protect job's snapshot (already gone is success)."""

    operation = jobs.DELETE

    def add_job_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("protect_job", metavar="<protect-job-id>", type=_uuid,
                            help="The protect job whose snapshot to delete.")

    def submit(self, parsed_args: argparse.Namespace, job_id: str) -> dict[str, typing.Any]:
        share_id, saved = self.saved_from(parsed_args.protect_job)
        connection = self.app.connection
        return connection.client.delete(connection.context, job_id, share_id, saved,
                                        wait=False)


class Verify(JobCommand):
    """Check that a protect job's snapshot is still there and available."""

    operation = jobs.VERIFY

    def add_job_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("protect_job", metavar="<protect-job-id>", type=_uuid,
                            help="The protect job whose snapshot to verify.")

    def submit(self, parsed_args: argparse.Namespace, job_id: str) -> dict[str, typing.Any]:
        share_id, saved = self.saved_from(parsed_args.protect_job)
        connection = self.app.connection
        return connection.client.verify(connection.context, job_id, share_id, saved,
                                        wait=False)


class JobShow(base.Errors, show.ShowOne):
    """Show a job (any worker answers for any job of your project)."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("job_id", metavar="<job-id>", type=_uuid, help="The job.")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[typing.Any, typing.Any]:
        connection = self.app.connection
        return base.record_columns(connection.client.get_job(connection.context,
                                                             parsed_args.job_id))


#: ``job list`` columns: (heading, record field).
LIST_COLUMNS = (("Job ID", "job_id"), ("Operation", "operation"), ("Share ID", "share_id"),
                ("Status", "status"), ("Phase", "phase"), ("Created", "created_at"),
                ("Finished", "finished_at"), ("Host", "host"))


class JobList(base.Errors, lister.Lister):
    """List jobs of your project (every project's for an admin), newest first."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("--status", choices=sorted(jobs.STATUSES), help="Only this status.")
        parser.add_argument("--operation", choices=sorted(jobs.OPERATIONS),
                            help="Only this operation.")
        parser.add_argument("--share", metavar="<share-id>", type=_uuid,
                            help="Only jobs of this share.")
        parser.add_argument("--since", metavar="<time>", type=_since,
                            help="Only jobs created at or after this ISO 8601 time.")
        parser.add_argument("--limit", metavar="<n>", type=_limit,
                            help="At most this many jobs (1-1000; default: the worker's, 100).")
        parser.add_argument("--marker", metavar="<job-id>", type=_uuid,
                            help="Start after this job (the last of the previous page).")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[typing.Any, typing.Any]:
        filters = {key: value for key, value in (
            ("status", parsed_args.status), ("operation", parsed_args.operation),
            ("share_id", parsed_args.share), ("since", parsed_args.since)) if value}
        connection = self.app.connection
        records = connection.client.list_jobs(connection.context, filters=filters or None,
                                              limit=parsed_args.limit,
                                              marker=parsed_args.marker)
        # Phase where the workers record one (a release that does not, shows none).
        shown = [(heading, field) for heading, field in LIST_COLUMNS
                 if field != "phase" or any("phase" in record for record in records)]
        return ([heading for heading, _ in shown],
                [[record.get(field) for _, field in shown] for record in records])
