"""The worker's processes run on native threads: importing this module first keeps eventlet out.

Nothing of ours uses eventlet: the RPC server runs oslo.messaging's
``threading`` executor, jobs run in :mod:`.pool`'s threads.  Yet eventlet used
to be imported, and announce its own deprecation (an
``EventletDeprecationWarning`` on stderr at every start), by two roads:

* ``oslo_messaging.server`` imports ``oslo_service.service``, which loads
  oslo.service's concurrency backend at import time -- ``eventlet`` unless a
  backend was chosen first (``oslo_service/backend/_eventlet/loopingcall.py``
  imports eventlet);
* futurist, oslo.utils' ``eventletutils`` and oslo.messaging import eventlet
  merely because it is installed (oslo.service requires it), to find out
  whether it is in use.

So, before anything imports oslo.messaging, this module chooses oslo.service's
``threading`` backend (``oslo.service[threading]``, in the ``worker`` extra) and
marks eventlet as absent in ``sys.modules``: the libraries' "use it if it is
there" finds it is not, and the process never imports it.  The worker's and
``manila-protector-manage``'s modules import this one before any other.

Where that is not possible -- eventlet was imported or another backend chosen
already (a test process, a program embedding the worker), or the threading
backend is not installed -- nothing is changed but the one warning is
ignored: ``EventletDeprecationWarning`` raised on importing eventlet.

Native threads cost memory of their own: glibc's malloc gives threads arenas of
their own (up to eight per core), each keeping what its threads freed.  A worker
runs dozens of threads (the RPC executor's, the job threads, the broker's and
the database pool's), so :func:`limit_malloc_arenas` caps them at
:data:`MALLOC_ARENAS` before any starts -- the worker's peak RSS under load was
about 12 MB lower in ``bench.fleet``, at no measurable cost in throughput.
"""

from __future__ import annotations

import ctypes
import os
import sys
import warnings

#: Whether this process runs without eventlet (else the warning is only silenced).
WITHOUT_EVENTLET = False
#: glibc malloc arenas of a worker process (see :func:`limit_malloc_arenas`).
MALLOC_ARENAS = 2
#: ``M_ARENA_MAX``, glibc's ``mallopt`` parameter.
_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``arenas``; call before the process starts threads.

    An operator's own choice wins: nothing is changed when ``MALLOC_ARENA_MAX`` or a
    ``glibc.malloc.arena_max`` tunable is in the environment.

    :returns: whether the cap was set (False also where the C library is not glibc).
    """
    if "MALLOC_ARENA_MAX" in os.environ or "glibc.malloc.arena_max" in os.environ.get(
            "GLIBC_TUNABLES", ""):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_ARENA_MAX, arenas))


def _silence_eventlet_deprecation() -> None:
    # Narrow: eventlet's own message (its EventletDeprecationWarning subclasses Warning,
    # and eventlet cannot be imported to name the class without emitting it).
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated", category=Warning)


def _keep_eventlet_out() -> bool:
    if "eventlet" in sys.modules:
        return sys.modules["eventlet"] is None
    try:
        from oslo_service import backend
    except ImportError:  # pragma: no cover - an oslo.service without backends
        return False
    # Absent before the backend loads: the threading backend imports futurist, which
    # imports eventlet if it can.
    sys.modules["eventlet"] = None  # type: ignore[assignment] - "not installed" to importers
    try:
        backend.init_backend(backend.BackendType.THREADING)
    except (ImportError, ValueError, backend.exceptions.BackendAlreadySelected):
        # No cotyledon (the threading extra), or a backend was chosen already.
        del sys.modules["eventlet"]
        return False
    return True


WITHOUT_EVENTLET = _keep_eventlet_out()
if not WITHOUT_EVENTLET:
    _silence_eventlet_deprecation()
