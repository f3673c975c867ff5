"""``python -m benchmarks.claims [--method M] [--output PATH]``: every paper claim's verdict from the stored cells."""

import sys

from benchmarks.claims import main

sys.exit(main())
