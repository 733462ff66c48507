"""``python -m crystalrep`` runs the command-line interface."""

import sys

from crystalrep.cli import main

sys.exit(main())
