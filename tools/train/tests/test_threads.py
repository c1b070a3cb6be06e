"""train.threads sets the BLAS pool (torch.set_num_threads does not reach Debian's OpenBLAS, pthread build) and keeps
torch's own pool at one thread beside it (both pools on both cores ran a training step 1.7x slower)."""
import ctypes
import os

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
    try:
        for n in (1, 2) if (os.cpu_count() or 1) >= 2 else (1,):  # a 1-core machine may cap OpenBLAS's pool at 1
            set_threads(n)
            assert torch.get_num_threads() == 1
            for path in paths:
                assert ctypes.CDLL(path).openblas_get_num_threads() == n, path
    finally:
        set_threads(1)
