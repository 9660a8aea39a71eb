"""The conformance matrix: every (row, dtype, sample) of tests/op_table.py against PyTorch, on every path.

A path is the NumPy backend, or the C++ backend at one of the ISAs this CPU has (``kernels.info()``); the
``path`` fixture (conftest.py) switches to it and restores the previous backend and ISA afterwards. Test ids read
``<row>-<sample>[-<dtype>]-<path>`` (float32 is the unnamed default), e.g. ``softmax-all_neg_inf_row-cpp-avx2``;
each case carries its row's homework marker, so ``pytest -m hw2_softmax_layernorm`` selects those rows.
"""
import numpy as np
import pytest
import torch

import minitx as mx
from op_table import OP_TABLE
from torch_compare import assert_close_to_torch

pytestmark = [
    pytest.mark.ops,
    # edge values (NaN, inf, size 0) make NumPy and torch warn about exactly what the samples test
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
    pytest.mark.filterwarnings(r"ignore:var\(\). degrees of freedom:UserWarning"),
]

def _marks(row):
    return [getattr(pytest.mark, row.marker)] if row.marker else []


def _dtype_id(dtype) -> str:
    return "" if np.dtype(dtype) == np.float32 else f"-{np.dtype(dtype).name}"


def _sample_cases():
    for row in OP_TABLE:
        for dtype in row.dtypes:
            for sample in row.samples(dtype):
                yield pytest.param(row, sample, id=f"{row.name}-{sample.name}{_dtype_id(dtype)}", marks=_marks(row))


def _error_cases():
    for row in OP_TABLE:
        for error in row.error_inputs:
            yield pytest.param(row, error, id=f"{row.name}-{error.name}", marks=_marks(row))


@pytest.mark.parametrize("row, sample", list(_sample_cases()))
def test_op_matches_torch(row, sample, path):
    assert_close_to_torch(sample.bind(row.op), sample.bind(sample.reference or row.reference), *sample.inputs,
                          differentiable=row.grad_inputs, check_grad=row.differentiable and sample.check_grad,
                          **{**row.tol, **sample.tol})


def _as(tensor, inputs):
    return [tensor(a) if isinstance(a, np.ndarray) else a for a in inputs]


@pytest.mark.parametrize("row, error", list(_error_cases()))
def test_op_raises_like_torch(row, error, path):
    """torch raises ``error.error`` on these inputs (checked, so the expectation cannot drift), and so does minitx."""
    with pytest.raises(error.error):
        row.reference(*_as(torch.tensor, error.inputs), **error.kwargs)
    with pytest.raises(error.error):
        row.op(*_as(mx.tensor, error.inputs), **error.kwargs)
