"""``python -m experiments.heatmaps``: see :mod:`experiments.heatmaps.run`."""

import sys

from experiments.heatmaps.run import main

sys.exit(main())
