"""``python -m simsbench`` runs the command line (see :mod:`simsbench.cli`)."""

import sys

from simsbench.cli import main

sys.exit(main())
