"""``python -m labcore`` is the ``labcore`` command; ``torchrun ... -m labcore train ...``
runs ``labcore train`` once per process."""

import sys

from labcore.cli import main

sys.exit(main())
