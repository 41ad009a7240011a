"""``python -m cqrs.cli``: the ``cqrs`` command."""

import sys

from . import main

sys.exit(main())
