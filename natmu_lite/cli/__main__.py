"""``python -m natmu_lite.cli``: the ``natmu-lite`` command (workers of a protocol are started this way)."""

import sys

from . import main

sys.exit(main())
