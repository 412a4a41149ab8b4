"""Karbor's own exception types for what the adapters raise inside Karbor.

Inside Karbor, its API and flows treat their own exceptions properly (a 404 for
a protectable that is not found, a checkpoint's or restore's reason): each
adapter raises Karbor's type there, carrying our error's code and message, with
our error as its cause.  Where Karbor is not installed (the worker, tests of
this package alone) our :class:`~manila_protector.exception.ProtectorError`
is raised as it is.
"""

from __future__ import annotations

from manila_protector import exception
from manila_protector.plugins import resources

try:  # pragma: no cover - only inside Karbor
    from karbor import exception as karbor_exception  # type: ignore[import-not-found]
except ImportError:
    karbor_exception = None

#: The hook's operation -> Karbor's exception class name for a failed resource.
_HOOK_ERRORS = {
    "protect": "CreateResourceFailed",
    "restore": "RestoreResourceFailed",
    "verify": "VerifyResourceFailed",
    "delete": "DeleteResourceFailed",
}


def reason(exc: BaseException) -> str:
    """What Karbor records: ``<code>: <message>`` for ours, the text otherwise."""
    if isinstance(exc, exception.ProtectorError):
        return f"{exc.code}: {exc.message}"
    return str(exc) or type(exc).__name__


def for_hook(operation: str, resource_id: str, exc: BaseException) -> BaseException:
    """The exception a failed hook raises: Karbor's ``<Operation>ResourceFailed`` in Karbor."""
    if karbor_exception is None or not isinstance(exc, exception.ProtectorError):
        return exc
    cls = getattr(karbor_exception, _HOOK_ERRORS[operation])  # pragma: no cover
    return cls(name="Manila share", reason=reason(exc), resource_id=resource_id,  # pragma: no cover
               resource_type=resources.SHARE_RESOURCE_TYPE)


def for_protectable(exc: exception.ProtectorError, resource_id: str | None) -> Exception:
    """The exception the protectable plugin raises: Karbor's, so its API answers 404/400."""
    if karbor_exception is None:
        return exc
    kind = resources.SHARE_RESOURCE_TYPE  # pragma: no cover
    if isinstance(exc, exception.NotFound):  # pragma: no cover
        return karbor_exception.ProtectableResourceNotFound(id=resource_id, type=kind,
                                                           reason=exc.message)
    if isinstance(exc, exception.InvalidStatus):  # pragma: no cover
        return karbor_exception.ProtectableResourceInvalidStatus(
            id=resource_id, type=kind, status=exc.details.get("status"))
    return karbor_exception.ListProtectableResourceFailed(  # pragma: no cover
        type=kind, reason=exc.message)
