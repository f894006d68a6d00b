"""``python -m nemap`` is the ``nemap`` command."""

import sys

from nemap.cli import main

sys.exit(main())
