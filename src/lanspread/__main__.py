"""``python -m lanspread`` runs the ``lanspread`` command."""

import sys

from lanspread.cli.app import main

sys.exit(main())
