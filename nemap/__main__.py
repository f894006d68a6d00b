"""``python -m nemap`` is the ``nemap`` command."""

import sys

from .cli import main

sys.exit(main())
