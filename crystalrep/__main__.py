"""``python -m crystalrep`` runs the command-line interface."""

import sys

from crystalrep.cli.main import main

sys.exit(main())
