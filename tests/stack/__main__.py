"""``python -m tests.stack``: see ``tests.stack.cli``."""

import sys

from tests.stack import cli

sys.exit(cli.main())
