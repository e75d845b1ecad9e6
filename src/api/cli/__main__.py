"""``python -m api.cli``: the ``ledger`` command, for a process started without the script."""

import sys

from api.cli import main

sys.exit(main())
