"""train.threads must bound the BLAS pool too: torch.set_num_threads does not reach Debian's OpenBLAS (pthread build)."""
import ctypes

import pytest
import torch

from beex.train import set_threads


def _openblas():
    with open("/proc/self/maps") as maps:
        return sorted({line.split()[-1] for line in maps if "openblas" in line.split()[-1]})


def test_set_threads_bounds_openblas_and_torch():
    torch.zeros(4, 4) @ torch.zeros(4, 4)  # the BLAS is loaded by now
    paths = _openblas()
    if not paths:
        pytest.skip("torch here does not run on OpenBLAS")
    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
        for path in paths:
            assert ctypes.CDLL(path).openblas_get_num_threads() == 1, path
    finally:
        set_threads(before)
