"""Shared test fixtures.

``backend_name``: parametrizes a test over both kernel backends ("numpy" reference and "cpp"), so the
Tensor-level suite runs under each. Tests that take it run with that backend active.
``path``: parametrizes a test over every path — NumPy, and C++ at every ISA the CPU has (the conformance matrix).
"""
import contextlib
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


# Every path an op can take: the NumPy backend, and the C++ backend at each ISA this CPU has.
PATHS = [("numpy", None)]
if minitx.cpp_available():
    from minitx import kernels

    PATHS += [("cpp", isa) for isa in kernels.info()["isa_available"]]


@contextlib.contextmanager
def on_path(backend: str, isa):
    """Run the block on ``backend`` (and ``isa`` for "cpp"), then restore the previous backend and ISA."""
    with minitx.backend(backend):
        if isa is None:
            yield
            return
        previous = kernels.info()["isa"]
        kernels.set_isa(isa)
        try:
            yield
        finally:
            kernels.set_isa(previous)


@pytest.fixture(params=PATHS, ids=lambda path: "-".join(filter(None, path)))
def path(request):
    """Parametrizes a test over every path (see PATHS); the test runs with that backend and ISA active."""
    with on_path(*request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.hookimpl(tryfirst=True)  # before -m deselects: the markers added here select
def pytest_collection_modifyitems(items):
    """A test module may place homework markers per case, after parametrization (so fixture parameters such as
    ``path`` count): its ``homework_marker(item)`` returns a marker name, several, or None."""
    for item in items:
        rule = getattr(getattr(item, "module", None), "homework_marker", None)
        if rule is not None and hasattr(item, "callspec"):
            names = rule(item) or ()
            for name in [names] if isinstance(names, str) else names:
                item.add_marker(name)
