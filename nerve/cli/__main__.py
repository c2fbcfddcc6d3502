"""``python -m nerve.cli``: the ``nerve`` command."""
import sys

from nerve.cli import main

sys.exit(main())
