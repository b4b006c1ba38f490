"""``python -m msexplore ...``: the same as the ``msexplore`` command."""

import sys

from msexplore.cli import main

sys.exit(main())
