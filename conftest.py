"""The test suite (package tests and notebooks alike) always runs in the ``ci`` profile.

Set here, at the repository root, so that notebook kernels started by nbmake inherit it.
"""

import os

os.environ["LABCORE_PROFILE"] = "ci"
os.environ.setdefault("LABCORE_CACHE", os.path.join(os.path.dirname(__file__), ".cache", "labcore"))
