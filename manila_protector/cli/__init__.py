"""The operator CLI (``manila-protector``); see ``shell.py``."""

import warnings

# oslo.messaging's import chain pulls in eventlet, which warns on import; an operator
# running a command has nothing to do about it.
warnings.filterwarnings("ignore", message="\\s*Eventlet is deprecated")
