"""The conformance matrix: every (row, dtype, sample) of tests/op_table.py against PyTorch, on every path.

A path is the NumPy backend, or the C++ backend at one of the ISAs this CPU has (``kernels.info()``); the
``path`` fixture (conftest.py) switches to it and restores the previous backend and ISA afterwards. Test ids read
``<row>-<sample>[-<dtype>]-<path>`` (float32 is the unnamed default), e.g. ``softmax-all_neg_inf_row-cpp-avx2``;
a case carries its row's homework marker only when it runs that homework's code (``homework_marker``), so
``pytest -m hw2_softmax_layernorm`` selects exactly the cases a student's softmax and layer norm decide, and an
untouched student copy fails every one of them.
"""
import numpy as np
import pytest
import torch

import minitx as mx
from minitx.backends import attention_path
from op_table import OP_TABLE
from torch_compare import assert_close_to_torch

pytestmark = [
    pytest.mark.ops,
    # edge values (NaN, inf, size 0) make NumPy and torch warn about exactly what the samples test
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
    pytest.mark.filterwarnings(r"ignore:var\(\). degrees of freedom:UserWarning"),
]

def homework_marker(item):
    """The homework marker of one case (conftest.py adds it at collection), or None when the case runs no
    homework code, so that grading counts only cases a student's code decides:

    - hw1 (op backwards, unbroadcast): only a gradient comparison runs a backward: differentiable row, sample
      with ``check_grad``, floating dtype.
    - hw2, hw3 (the NumPy reference kernels): the NumPy path runs them; the C++ path only for what its kernels
      do not take (float64; attention inputs ``attention_path`` does not fuse).
    - Error inputs are refused before any kernel. A row's ``reaches`` excludes samples that skip the homework
      code (softmax of a size-0 input, add/sub without broadcasting).
    """
    params = item.callspec.params
    row, sample = params["row"], params.get("sample")
    if not row.marker or sample is None or (row.reaches is not None and not row.reaches(sample)):
        return None
    arrays = [a for a in sample.inputs if isinstance(a, np.ndarray)]
    floating = [a for a in arrays if np.issubdtype(a.dtype, np.floating)]
    if row.marker == "hw1_autograd":
        runs = bool(floating) and row.differentiable and sample.check_grad
    elif params["path"][0] == "numpy" or any(a.dtype == np.float64 for a in floating):
        runs = True
    elif row.marker == "hw3_attention":
        q, k, v = (np.swapaxes(a, -1, -2) if sample.noncontiguous and a.ndim > 1 else a for a in arrays[:3])
        runs = attention_path(q, k, v, 0.0, False) == "unfused"
    else:
        runs = False
    return row.marker if runs else None


def _dtype_id(dtype) -> str:
    return "" if np.dtype(dtype) == np.float32 else f"-{np.dtype(dtype).name}"


def _sample_cases():
    for row in OP_TABLE:
        for dtype in row.dtypes:
            for sample in row.samples(dtype):
                yield pytest.param(row, sample, id=f"{row.name}-{sample.name}{_dtype_id(dtype)}")


def _error_cases():
    for row in OP_TABLE:
        for error in row.error_inputs:
            yield pytest.param(row, error, id=f"{row.name}-{error.name}")


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
