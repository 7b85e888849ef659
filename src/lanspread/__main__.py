"""``python -m lanspread`` runs the ``lanspread`` command."""

import sys

from lanspread.cli.entry import main

sys.exit(main())
