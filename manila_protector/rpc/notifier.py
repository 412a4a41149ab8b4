"""Status notifications: ``manila_protector.<operation>.start`` / ``.end`` / ``.error``.

Payload: the job record (see ``doc/notifications.rst``).  ``.error`` is sent at
ERROR priority, the others at INFO.  The publisher id is
``manila_protector.<host>``.
"""

from __future__ import annotations

import logging
import typing

from oslo_context import context as oslo_context
import oslo_messaging

from manila_protector import jobs
from manila_protector.rpc import context as rpc_context

LOG = logging.getLogger(__name__)

EVENT_PREFIX = "manila_protector"


#: The send retry count that stands for "forever".  oslo.messaging (18.3) hands the
#: notifier's ``retry`` to kombu as ``max_retries`` when it must open a new pooled
#: connection, and kombu reads ``-1`` as "give up at once": with the default
#: ``[oslo_messaging_notifications] retry = -1`` a notification sent while the broker
#: restarted was dropped (logged, not raised), and its job was never announced.  A
#: count this large means forever on both of oslo.messaging's paths.
RETRY_FOREVER = 2**31 - 1


def send_retry(retry: int | None) -> int:
    """The retry count to send with: ``None`` or negative (forever) is :data:`RETRY_FOREVER`."""
    return RETRY_FOREVER if retry is None or retry < 0 else retry


def event_type(operation: str, phase: str) -> str:
    """``manila_protector.<operation>.<phase>``."""
    return f"{EVENT_PREFIX}.{operation or 'request'}.{phase}"


class JobNotifier:
    """Sends a job's notifications through an oslo.messaging ``Notifier``.

    :param transport: a notification transport.
    :param host: this worker's host name (in the publisher id).
    :param driver: notification drivers; None reads ``[oslo_messaging_notifications]``.
    :param topics: notification topics; None reads ``[oslo_messaging_notifications]``.
    :param retry: send retries while the broker is away; None reads
        ``[oslo_messaging_notifications] retry``; negative: forever (see :func:`send_retry`).
    """

    def __init__(self, transport: typing.Any, host: str, *, driver: typing.Any = None,
                 topics: list[str] | None = None, retry: int | None = None) -> None:
        notifier = oslo_messaging.Notifier(
            transport,
            publisher_id=f"{EVENT_PREFIX}.{host}",
            driver=driver,
            topics=topics,
            serializer=rpc_context.RequestContextSerializer(),
            retry=retry,
        )
        self._notifier = notifier.prepare(retry=send_retry(notifier.retry))

    @staticmethod
    def _context(record: jobs.JobRecord) -> oslo_context.RequestContext:
        # The notifier redacts a RequestContext itself; build one that carries no token.
        return oslo_context.RequestContext(project_id=record.project_id,
                                           request_id=record.request_id)

    def start(self, record: jobs.JobRecord) -> None:
        self._notifier.info(self._context(record), event_type(record.operation, "start"),
                            record.to_dict())

    def finished(self, record: jobs.JobRecord) -> None:
        """``.end`` for a succeeded job, ``.error`` (ERROR priority) for a failed one."""
        if record.status == jobs.SUCCEEDED:
            self._notifier.info(self._context(record), event_type(record.operation, "end"),
                                record.to_dict())
        else:
            self._notifier.error(self._context(record), event_type(record.operation, "error"),
                                 record.to_dict())
