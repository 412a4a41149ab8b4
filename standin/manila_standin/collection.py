"""The base of the stand-in's resource collections (shares, snapshots, rules...).

A collection holds one kind of record with its indexes and the operations on
it. All of them share one :class:`~manila_standin.state.StandInState`: its lock,
clock, settings, faults, timeline and conflict detector, and the other
collections (a share's deletion asks the snapshots whether it has any).
"""

from __future__ import annotations

import functools
import typing

from manila_standin import transitions

if typing.TYPE_CHECKING:
    from manila_standin import state as state_mod

Method = typing.TypeVar("Method", bound=typing.Callable[..., typing.Any])


Index = dict[str, dict[str, None]]
"""Record ids grouped by a key (a project, a share), in insertion order."""


class Collection:
    """One kind of record of the stand-in's model.

    :param state: the model the collection belongs to.
    """

    def __init__(self, state: state_mod.StandInState) -> None:
        self.state = state
        self.by_id: dict[str, typing.Any] = {}

    def now(self) -> float:
        """Return the current stand-in time."""
        return self.state.now()

    # -- the lifecycle of its records (transitions.Lifecycle) -----------------------

    def lookup(self, resource_id: str) -> typing.Any:
        """Return a record by id, None when it is gone."""
        return self.by_id.get(resource_id)

    def frozen(self, record: typing.Any) -> bool:
        """Whether a fault keeps the record's due transition from completing (never here)."""
        return False

    def complete(self, record: typing.Any, transition: transitions.Transition) -> None:
        """Reach the transition's status, or remove the record when it has none."""
        if transition.target is None:
            self.remove(record)
            return
        record.status = transition.target
        record.updated_at = transition.ready_at

    def remove(self, record: typing.Any) -> None:
        """Forget a record that is gone, with its indexes and what it holds."""
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------------------

    def members(self, index: Index, key: str | None) -> list[typing.Any]:
        """The records of ``index[key]`` (every record when ``key`` is None), oldest first."""
        if key is None:
            return list(self.by_id.values())
        return [self.by_id[i] for i in index.get(key, {})]

    def force_status(self, resource_id: str, status: str) -> typing.Any:
        """Set a record's status, cancelling its pending transition; returns the record.

        :raises KeyError: if the record does not exist.
        """
        record = self.by_id[resource_id]
        transitions.cancel(record)
        record.status = status
        record.updated_at = self.now()
        return record


def unindex(index: Index, key: str, resource_id: str) -> None:
    """Drop ``resource_id`` from ``index[key]``, and the key once it holds nothing."""
    members = index.get(key)
    if members is not None:
        members.pop(resource_id, None)
        if not members:
            del index[key]


def settled(method: Method) -> Method:
    """Run a collection method under the state lock, after completing what is due.

    Every public operation that reads or changes records goes through this, so
    that it sees the statuses stand-in time has reached.
    """

    @functools.wraps(method)
    def wrapper(self: Collection, *args: typing.Any, **kwargs: typing.Any) -> typing.Any:
        with self.state.lock:
            self.state.settle()
            return method(self, *args, **kwargs)

    return typing.cast(Method, wrapper)
