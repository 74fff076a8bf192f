"""``python -m experiments.papers``: see :mod:`experiments.papers.run`."""

from experiments.papers.run import main

raise SystemExit(main())
