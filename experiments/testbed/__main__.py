"""``python -m experiments.testbed``: see :mod:`experiments.testbed.run`."""

import sys

from experiments.testbed.run import main

sys.exit(main())
