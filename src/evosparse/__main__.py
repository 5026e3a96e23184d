"""``python -m evosparse ...`` is the ``evosparse`` command (what ``torchrun -m evosparse train ...`` runs)."""

import sys

from evosparse.cli.main import main

sys.exit(main())
