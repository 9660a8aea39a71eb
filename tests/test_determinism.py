"""Same inputs, same bits: the C++ kernels that add partial sums across threads (layer norm's dγ, dβ; the flash
attention backward's dQ over key blocks) give identical gradients on every call, whichever thread ran which part
(runtime's parallel_for_slots: fixed ranges per partial sum, added in a fixed order). A training run, a resume
and the data-parallel ranks rely on it."""
import numpy as np
import pytest

import minitx as mx
from minitx.models.gpt2 import GPT2Config, GPT2LMHeadModel
from minitx.nn import functional as F

pytestmark = pytest.mark.skipif(not mx.cpp_available(), reason="the C++ extension is not built")
if mx.cpp_available():
    from minitx import kernels

REPEATS = 8


@pytest.fixture(params=[2, 3])
def threads(request):
    before = kernels.get_num_threads()
    kernels.set_num_threads(request.param)
    yield request.param
    kernels.set_num_threads(before)


def gradients_of(fn, arrays) -> list:
    """The gradients of sum(fn(*leaves) * upstream) w.r.t. fresh leaves made from ``arrays``."""
    leaves = [mx.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    upstream = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    (out * mx.tensor(upstream)).sum().backward()
    return [leaf.grad.numpy().copy() for leaf in leaves]


def assert_same_bits_every_call(fn, arrays):
    first = gradients_of(fn, arrays)
    for _ in range(REPEATS - 1):
        again = gradients_of(fn, arrays)
        for a, b in zip(first, again):
            assert np.array_equal(a.view(np.uint32), b.view(np.uint32))


def test_layer_norm_backward_is_deterministic(threads, path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4096, 768)).astype(np.float32)     # many rows: split over threads
    w, b = (rng.standard_normal(768).astype(np.float32) for _ in range(2))
    assert_same_bits_every_call(lambda x_, w_, b_: F.layer_norm(x_, 768, w_, b_), [x, w, b])


@pytest.mark.parametrize("shape", [(2, 4, 512, 64), (1, 1, 1024, 64)], ids=["8_heads", "1_head"])
def test_attention_backward_is_deterministic(threads, path, shape):
    """Several key blocks per head; 8 heads run one task per head, 1 head deals its key blocks to slots."""
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
    assert_same_bits_every_call(lambda q_, k_, v_: F.scaled_dot_product_attention(q_, k_, v_, is_causal=True),
                                [q, k, v])


def test_training_step_gradients_are_deterministic(threads):
    ids = np.random.default_rng(0).integers(0, 500, (16, 128))

    def parameter_gradients():
        mx.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=128, n_head=4, vocab_size=500, n_positions=128))
        model(ids, labels=ids).loss.backward()   # dropout on: the same seed draws the same masks
        return {name: p.grad.numpy().copy() for name, p in model.named_parameters()}

    first, second = parameter_gradients(), parameter_gradients()
    assert [n for n in first if not np.array_equal(first[n], second[n])] == []
