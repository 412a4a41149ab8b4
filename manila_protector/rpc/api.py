"""The client side of the RPC API: what callers (Karbor, the CLI, the benchmarks) import.

Example (a configuration of the caller's own, so that the worker's messaging
defaults never change a service's global ``cfg.CONF``)::

    conf = cfg.ConfigOpts()
    api.prepare_conf(conf)                          # durable, as the worker declares
    conf([])
    transport = api.get_transport(conf, "rabbit://user:password@rabbit:5672/")
    client = api.ProtectorAPI(transport)            # the workers' exchange and topic
    record = client.protect(ctxt, str(uuid.uuid4()), share_id,
                            {"snapshot_name": "nightly", "description": "", "force": False})
    client.restore(ctxt, str(uuid.uuid4()), share_id, record["result"], {}, cast=True)

A ``call`` returns the final job record (the worker sends heartbeats while the
job runs); ``cast=True`` returns at once and the outcome arrives as
notifications.  A request whose ``.start`` notification (or reply) never comes
may be sent again with the same ``job_id``: the worker that has the job answers
for it (see ``doc/rpc.rst``).

This module imports nothing of the worker's side.
"""

from __future__ import annotations

import contextlib
import importlib
import typing

from oslo_config import cfg
import oslo_messaging
from oslo_messaging import opts as oslo_messaging_opts

from manila_protector import exception
from manila_protector.rpc import context as rpc_context
from manila_protector.rpc import contract

DEFAULT_TOPIC = contract.DEFAULT_TOPIC
DEFAULT_EXCHANGE = contract.CONTROL_EXCHANGE
#: Seconds a call may go without a heartbeat from the worker (the worker is presumed dead).
DEFAULT_TIMEOUT = 60.0
#: Seconds a ``call`` waits for a job in total.
DEFAULT_JOB_TIMEOUT = 4 * 3600.0


def register_messaging_opts(conf: cfg.ConfigOpts) -> None:
    """Register every option oslo.messaging reads on ``conf`` (harmless if already there).

    oslo.messaging 18 registers ``[oslo_messaging_tracing]`` and
    ``[oslo_messaging_metrics]`` only on the global ``cfg.CONF``, yet reads them
    from the transport's conf on every call and cast: without them a private
    ConfigOpts fails with ``NoSuchOptError``.
    """
    for group, options in oslo_messaging_opts.list_opts():
        conf.register_opts(options, group=group)
    for module, group in (("oslo_messaging._tracing.client", "oslo_messaging_tracing"),
                          ("oslo_messaging._metrics.client", "oslo_messaging_metrics")):
        try:
            options = getattr(importlib.import_module(module), group)
        except (ImportError, AttributeError):  # releases without them read nothing
            continue
        conf.register_opts(options, group=group)


def prepare_conf(conf: cfg.ConfigOpts) -> None:
    """Make ``conf`` -- one of the caller's own -- speak to the workers as they expect.

    Registers oslo.messaging's options and gives them the worker's defaults
    (:data:`contract.MESSAGING_DEFAULTS`: durable queues and exchanges, the
    workers' exchange); a value the caller configures wins.  Do not pass a
    service's global ``cfg.CONF``: its own queues would change declaration.
    """
    register_messaging_opts(conf)
    for (group, name), value in contract.MESSAGING_DEFAULTS.items():
        conf.set_default(name, value, group=None if group == "DEFAULT" else group)


def get_transport(conf: cfg.ConfigOpts, url: str | None = None) -> typing.Any:
    """An RPC transport that turns the worker's errors back into our exception types."""
    register_messaging_opts(conf)
    return oslo_messaging.get_rpc_transport(conf, url=url,
                                            allowed_remote_exmods=contract.ALLOWED_REMOTE_EXMODS)


@contextlib.contextmanager
def _translate(method: str, topic: str) -> typing.Iterator[None]:
    """The one place oslo.messaging's own errors become ours (the worker's errors
    arrive as our types already: :data:`contract.ALLOWED_REMOTE_EXMODS`)."""
    try:
        yield
    except oslo_messaging.MessagingTimeout as exc:
        raise exception.WorkerUnavailable(
            f"no worker on topic {topic} answered {method} in time (none running, or the "
            "one with the job died); sending the same job_id again is safe") from exc
    except (oslo_messaging.RemoteError, oslo_messaging.NoSuchMethod,
            oslo_messaging.UnsupportedVersion) as exc:
        name = getattr(exc, "exc_type", None) or type(exc).__name__
        raise exception.Unsupported(
            f"the workers on topic {topic} refused {method} ({name}): they do not serve "
            f"RPC API {contract.VERSION} of namespace {contract.NAMESPACE}") from exc
    except oslo_messaging.MessagingException as exc:
        raise exception.WorkerUnavailable(
            f"{method} could not be sent to the workers on topic {topic}: "
            f"{type(exc).__name__}") from exc


class ProtectorAPI:
    """Client for ``manila_protector`` RPC API 1.2 (a method of 1.0 is sent as 1.0).

    :param transport: an oslo.messaging RPC transport (see :func:`get_transport`).
    :param topic: the workers' topic.
    :param exchange: the workers' exchange (named explicitly: a caller's own
        ``control_exchange`` is usually ``openstack`` or its service's).
    :param timeout: seconds a call may go without a heartbeat from the worker
        before it fails with ``MessagingTimeout`` (the worker is presumed dead).
    :param job_timeout: seconds a ``call`` waits for a job in total.
    :param retry: connection retries when the broker is unreachable (None: forever,
        oslo.messaging's default; 0: fail at once -- what an interactive caller wants).

    Every method raises :class:`~manila_protector.exception.ProtectorError`:
    the worker's own refusals as they were raised, ``WorkerUnavailable`` when no
    worker answered (retryable: the same ``job_id`` is safe to send again),
    ``Unsupported`` when the workers do not serve this API.
    """

    def __init__(self, transport: typing.Any, *, topic: str = DEFAULT_TOPIC,
                 exchange: str = DEFAULT_EXCHANGE, timeout: float = DEFAULT_TIMEOUT,
                 job_timeout: float = DEFAULT_JOB_TIMEOUT, retry: int | None = None) -> None:
        target = oslo_messaging.Target(exchange=exchange, topic=topic,
                                       namespace=contract.NAMESPACE,
                                       version=contract.BASE_VERSION)
        self._client = oslo_messaging.get_rpc_client(
            transport, target, serializer=rpc_context.RequestContextSerializer(),
            timeout=timeout, retry=retry)
        self._topic = topic
        self._timeout = timeout
        self._job_timeout = job_timeout

    def _call(self, cctxt: typing.Any, ctxt: typing.Any, method: str,
              **kwargs: typing.Any) -> typing.Any:
        with _translate(method, self._topic):
            return cctxt.call(ctxt, method, **kwargs)

    def _job(self, ctxt: typing.Any, method: str, cast: bool, wait: bool = True,
             **kwargs: typing.Any) -> dict[str, typing.Any] | None:
        if cast:
            with _translate(method, self._topic):
                self._client.cast(ctxt, method, **kwargs)
            return None
        if not wait:
            # The record as accepted: a refusal still arrives typed.
            return self._call(self._client, ctxt, method, **kwargs)
        cctxt = self._client.prepare(timeout=self._job_timeout,
                                     call_monitor_timeout=self._timeout)
        return self._call(cctxt, ctxt, method, wait=True, **kwargs)

    def protect(self, ctxt: typing.Any, job_id: str, share_id: str,
                parameters: dict[str, typing.Any], *, cast: bool = False,
                wait: bool = True) -> dict[str, typing.Any] | None:
        """Snapshot a share; the job's result is the saved info.

        Every job method: ``cast=True`` returns None at once; ``wait=False`` returns
        the record as accepted (follow it with :meth:`get_job`); else the final record.
        """
        return self._job(ctxt, "protect", cast, wait, job_id=job_id, share_id=share_id,
                         parameters=parameters)

    def restore(self, ctxt: typing.Any, job_id: str, share_id: str,
                saved_info: dict[str, typing.Any], parameters: dict[str, typing.Any],
                *, cast: bool = False, wait: bool = True) -> dict[str, typing.Any] | None:
        """Restore a snapshot into a new share (or revert the share: ``share_id`` parameter)."""
        return self._job(ctxt, "restore", cast, wait, job_id=job_id, share_id=share_id,
                         saved_info=saved_info, parameters=parameters)

    def delete(self, ctxt: typing.Any, job_id: str, share_id: str,
               saved_info: dict[str, typing.Any], *, cast: bool = False,
               wait: bool = True) -> dict[str, typing.Any] | None:
        """Delete a protect's snapshot (already gone is success)."""
        return self._job(ctxt, "delete", cast, wait, job_id=job_id, share_id=share_id,
                         saved_info=saved_info)

    def verify(self, ctxt: typing.Any, job_id: str, share_id: str,
               saved_info: dict[str, typing.Any], *, cast: bool = False,
               wait: bool = True) -> dict[str, typing.Any] | None:
        """Check that a protect's snapshot still exists and is available."""
        return self._job(ctxt, "verify", cast, wait, job_id=job_id, share_id=share_id,
                         saved_info=saved_info)

    def get_job(self, ctxt: typing.Any, job_id: str, *, server: str | None = None
                ) -> dict[str, typing.Any]:
        """A job's record; any worker answers (the job store is shared).

        :param server: ask that worker only (e.g. a record's ``host``).
        """
        cctxt = self._client.prepare(server=server) if server else self._client
        return self._call(cctxt, ctxt, "get_job", job_id=job_id)

    def list_jobs(self, ctxt: typing.Any, *, filters: dict[str, typing.Any] | None = None,
                  limit: int | None = None, marker: str | None = None
                  ) -> list[dict[str, typing.Any]]:
        """(API 1.1) Jobs of the caller's project (every project's for an admin), newest
        first; at most ``limit`` (default 100, at most 1000); the next page starts after
        ``marker`` (the last ``job_id`` of this one).

        :param filters: any of ``status``, ``operation``, ``share_id``, ``since``
            (ISO 8601).
        """
        cctxt = self._client.prepare(version=contract.METHOD_VERSIONS["list_jobs"])
        return self._call(cctxt, ctxt, "list_jobs", filters=filters, limit=limit,
                          marker=marker)

    def ping(self, ctxt: typing.Any, *, server: str | None = None,
             timeout: float | None = None) -> dict[str, typing.Any]:
        """(API 1.2) One worker's status: ``host``, ``version``, ``running`` and
        ``queued`` jobs, ``uptime`` (seconds), ``members`` (the hosts on the topic its
        lock backend knows, or None).

        :param server: ask that worker (default: any worker of the topic).
        :param timeout: seconds to wait for the answer (default: the client's).
        """
        options: dict[str, typing.Any] = {"version": contract.METHOD_VERSIONS["ping"]}
        if server:
            options["server"] = server
        if timeout is not None:
            options["timeout"] = timeout
        return self._call(self._client.prepare(**options), ctxt, "ping")

    def list_resources(self, ctxt: typing.Any) -> list[dict[str, typing.Any]]:
        """The caller's protectable shares."""
        return self._call(self._client, ctxt, "list_resources")

    def show_resource(self, ctxt: typing.Any, share_id: str) -> dict[str, typing.Any]:
        """One protectable share."""
        return self._call(self._client, ctxt, "show_resource", share_id=share_id)

    def list_dependent_resources(self, ctxt: typing.Any, parent_type: str, parent_id: str
                                 ) -> list[dict[str, typing.Any]]:
        """The protectable shares of a project."""
        return self._call(self._client, ctxt, "list_dependent_resources",
                          parent_type=parent_type, parent_id=parent_id)
