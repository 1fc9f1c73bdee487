"""``python -m webmini``: the same as the ``webmini`` command."""

import sys

from webmini.cli import main

sys.exit(main())
