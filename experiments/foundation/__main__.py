"""``python -m experiments.foundation``: see :mod:`experiments.foundation.run`."""

import sys

from experiments.foundation.run import main

sys.exit(main())
