"""``python -m bench``: run every benchmark (see :mod:`bench.run_all`)."""

import sys

from bench import run_all

sys.exit(run_all.main())
