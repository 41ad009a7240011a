"""``python -m cqrs.cli``: the ``cqrs`` command."""

import sys

from .commands import main

sys.exit(main())
