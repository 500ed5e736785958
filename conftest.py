"""The test suite (package tests and notebooks alike) always runs in the ``ci`` profile.

Set here, at the repository root, so that notebook kernels started by nbmake inherit it.
"""

import os

import pytest

os.environ["LABCORE_PROFILE"] = "ci"
os.environ.setdefault("LABCORE_CACHE", os.path.join(os.path.dirname(__file__), ".cache", "labcore"))


@pytest.fixture
def one_thread():
    """Tiny tensors: one torch thread avoids thread-pool hand-offs and stalls on a busy
    machine. Test modules of small-tensor code opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``; the old count is restored."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
