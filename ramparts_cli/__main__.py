"""``python -m ramparts_cli`` runs the ``ramparts`` command."""

import sys

from ramparts_cli.main import main

sys.exit(main())
