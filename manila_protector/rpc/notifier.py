"""Status notifications: ``manila_protector.<operation>.start`` / ``.end`` / ``.error``.

Payload: the job record (see ``doc/notifications.rst``).  ``.error`` is sent at
ERROR priority, the others at INFO.  The publisher id is
``manila_protector.<host>``; the envelope is oslo.messaging's 2.0 format
(``messagingv2``), what every OpenStack consumer reads.

Unlike oslo.messaging's ``Notifier`` -- which logs a failed send and carries on,
so a job would be recorded as announced when it was not -- every send here
raises ``exception.NotificationFailed`` unless the broker took the message (the
rabbit driver publishes with publisher confirms).  The runner records a
notification as sent only after that, and sends it again otherwise.
"""

from __future__ import annotations

import datetime
import logging
import typing
import uuid

from oslo_context import context as oslo_context
import oslo_messaging

from manila_protector import exception
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
    """Sends a job's notifications, raising unless the broker confirmed each one.

    :param transport: a notification transport.
    :param host: this worker's host name (in the publisher id).
    :param topics: notification topics (``[oslo_messaging_notifications] topics``).
    :param enabled: whether to send at all (``[oslo_messaging_notifications] driver``
        names ``messagingv2``); when not, nothing is sent and every send succeeds.
    :param retry: send retries while the broker is away; negative: forever.
    """

    def __init__(self, transport: typing.Any, host: str, *, topics: typing.Sequence[str],
                 enabled: bool = True, retry: int | None = None) -> None:
        self._transport = transport
        self._topics = list(topics)
        self._enabled = enabled
        self._retry = send_retry(retry)
        self.publisher_id = f"{EVENT_PREFIX}.{host}"
        self._serializer = rpc_context.RequestContextSerializer()

    @classmethod
    def from_conf(cls, conf: typing.Any, transport: typing.Any, host: str) -> JobNotifier:
        section = conf.oslo_messaging_notifications
        return cls(transport, host, topics=section.topics,
                   enabled="messagingv2" in (section.driver or []), retry=section.retry)

    def _send(self, priority: str, event: str, payload: dict[str, typing.Any],
              ctxt: oslo_context.RequestContext, retry: int | None = None) -> None:
        if not self._enabled:
            return
        message = {
            "message_id": str(uuid.uuid4()),
            "publisher_id": self.publisher_id,
            "event_type": event,
            "priority": priority,
            "payload": payload,
            "timestamp": str(datetime.datetime.now(datetime.UTC).replace(tzinfo=None)),
        }
        context = self._serializer.serialize_context(ctxt)
        for topic in self._topics:
            target = oslo_messaging.Target(topic=f"{topic}.{priority.lower()}")
            try:
                # NOTE: oslo.messaging's Notifier and drivers swallow send failures;
                # the transport's own send raises them (and the rabbit driver
                # publishes with confirms), which is what "sent" must mean here.
                self._transport._send_notification(  # noqa: SLF001
                    target, context, message, version=2.0,
                    retry=self._retry if retry is None else retry)
            except Exception as exc:  # noqa: BLE001 - any failure means "not sent"
                raise exception.NotificationFailed(
                    f"{event} could not be sent to {target.topic}: "
                    f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _context(record: jobs.JobRecord) -> oslo_context.RequestContext:
        # The context of a notification carries no token; it is not made the thread's
        # current context (what oslo.log writes on each line: the job's own caller).
        return rpc_context.RequestContext(project_id=record.project_id,
                                          request_id=record.request_id, overwrite=False)

    def start(self, record: jobs.JobRecord) -> None:
        """``.start`` of an accepted job.  :raises exception.NotificationFailed: not sent."""
        self._send("INFO", event_type(record.operation, "start"), record.to_dict(),
                   self._context(record))

    def finished(self, record: jobs.JobRecord) -> None:
        """``.end`` for a succeeded job, ``.error`` (ERROR priority) for a failed one.

        :raises exception.NotificationFailed: not sent.
        """
        if record.status == jobs.SUCCEEDED:
            self._send("INFO", event_type(record.operation, "end"), record.to_dict(),
                       self._context(record))
        else:
            self._send("ERROR", event_type(record.operation, "error"), record.to_dict(),
                       self._context(record))

    def worker_started(self, host: str, retry: int) -> None:
        """``manila_protector.worker.start``: sent once at start, so that a notification
        queue the worker cannot publish to (declared otherwise) stops it at once.

        :raises exception.NotificationFailed: not sent.
        """
        self._send("INFO", f"{EVENT_PREFIX}.worker.start", {"host": host},
                   rpc_context.RequestContext(overwrite=False), retry=retry)
