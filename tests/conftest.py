"""Shared test fixtures.

``backend_name``: parametrizes a test over both kernel backends ("numpy" reference and "cpp"), so the
Tensor-level suite runs under each. Tests that take it run with that backend active.
"""
import os

import numpy as np
import pytest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import minitx  # noqa: E402

BACKENDS = ["numpy"] + (["cpp"] if minitx.cpp_available() else [])


@pytest.fixture(params=BACKENDS)
def backend_name(request):
    with minitx.backend(request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)
