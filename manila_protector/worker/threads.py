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
"""

from __future__ import annotations

import sys
import warnings

#: Whether this process runs without eventlet (else the warning is only silenced).
WITHOUT_EVENTLET = False


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
