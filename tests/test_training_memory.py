"""Training memory: the backward walk frees what it no longer needs, and gradient checkpointing
(``model.gradient_checkpointing_enable()``) gives the same gradients, dropout included, at a lower peak."""
import tracemalloc
import weakref

import numpy as np
import pytest

import minitx
from minitx.autograd import Function
from minitx.models.bert import BertConfig, BertForPreTraining
from minitx.models.gpt2 import GPT2Config, GPT2LMHeadModel

pytestmark = pytest.mark.models


class Probe(Function):
    """y = x, saving a fresh array; its backward counts how many probes' saved arrays are still alive."""
    saved_refs, alive_at_backward = [], []

    @staticmethod
    def forward(ctx, x):
        saved = x * 2.0
        Probe.saved_refs.append(weakref.ref(saved))
        ctx.save(saved)
        return x + 1.0

    @staticmethod
    def backward(ctx, grad):
        Probe.alive_at_backward.append(sum(ref() is not None for ref in Probe.saved_refs))
        return grad


def test_backward_frees_saved_arrays_and_gradients_as_it_goes():
    """In a chain of n probes, when probe k runs its backward the n - 1 - k later ones have run and their saved
    arrays are gone (k + 1 alive), and the traced memory falls steadily instead of holding every gradient."""
    n, size = 50, 1 << 16                              # 50 probes of 256 KiB each
    Probe.saved_refs.clear()
    Probe.alive_at_backward.clear()
    x = minitx.Tensor(np.ones(size, dtype=np.float32), requires_grad=True)
    y = x
    for _ in range(n):
        y = Probe.apply(y)
    loss = y.sum()
    tracemalloc.start()
    loss.backward()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert Probe.alive_at_backward == list(range(n, 0, -1))
    assert peak < 8 * size * 4, f"backward peak {peak / 2**20:.1f} MiB: gradients or saved arrays retained"


BERT = dict(vocab_size=60, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=32, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
GPT2 = dict(vocab_size=60, n_embd=32, n_layer=3, n_head=4, n_positions=32)


def bert_batch(b=2, length=12):
    rng = np.random.default_rng(1)
    ids = rng.integers(1, 60, (b, length))
    labels = np.where(rng.random((b, length)) < 0.3, ids, -100)
    return dict(input_ids=ids, labels=labels, next_sentence_label=rng.integers(0, 2, b))


def gpt2_batch(b=2, length=12):
    ids = np.random.default_rng(2).integers(0, 60, (b, length))
    return dict(input_ids=ids, labels=ids)


CASES = {"bert": (BertForPreTraining, BertConfig, BERT, bert_batch),
         "bert-alibi": (BertForPreTraining, BertConfig, {**BERT, "position_embedding_type": "alibi"}, bert_batch),
         "gpt2": (GPT2LMHeadModel, GPT2Config, GPT2, gpt2_batch)}


def gradients(name, checkpointing, seed=0, **batch_kw):
    """Loss and parameter gradients of one training step (dropout on) from the same weights and seed."""
    model_class, config_class, kw, batch = CASES[name]
    minitx.manual_seed(0)
    model = model_class(config_class(**kw)).train()
    if checkpointing:
        model.gradient_checkpointing_enable()
    minitx.manual_seed(seed)
    loss = model(**batch(**batch_kw)).loss
    loss.backward()
    return loss.item(), {k: p.grad.numpy() for k, p in model.named_parameters()}


@pytest.mark.parametrize("name", ["bert", "bert-alibi", "gpt2"])
def test_gradient_checkpointing_same_gradients_with_dropout(name, backend_name):
    loss, grads = gradients(name, checkpointing=False)
    loss_ckpt, grads_ckpt = gradients(name, checkpointing=True)
    assert loss == loss_ckpt
    for key, g in grads.items():
        np.testing.assert_allclose(grads_ckpt[key], g, rtol=1e-5, atol=1e-6, err_msg=key)
    _, other_seed = gradients(name, checkpointing=False, seed=1)
    assert any(not np.allclose(other_seed[k], g) for k, g in grads.items())  # dropout is really on


def traced_peak(fn) -> int:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


@pytest.mark.parametrize("name", ["bert", "gpt2"])
def test_gradient_checkpointing_lowers_the_peak(name):
    def step(checkpointing):
        return lambda: gradients(name, checkpointing, b=8, length=32)
    plain, recomputed = traced_peak(step(False)), traced_peak(step(True))
    assert recomputed < 0.8 * plain, f"peak {recomputed / 2**20:.2f} MiB vs {plain / 2**20:.2f} MiB"


def test_linear_cross_entropy_computes_gradients_in_the_forward_only_when_wanted(rng):
    """A training call saves dL/dhidden and dL/dweight (no logits, no inputs); without grad mode it keeps
    nothing and the loss is the same."""
    from minitx.ops.linear_cross_entropy import linear_cross_entropy

    hidden = minitx.tensor(rng.standard_normal((7, 4)).astype(np.float32), requires_grad=True)
    weight = minitx.tensor(rng.standard_normal((11, 4)).astype(np.float32), requires_grad=True)
    target = np.array([1, 0, 10, -100, 3, 3, 7])
    loss = linear_cross_entropy(hidden, weight, target, chunk=3)
    assert [a.shape for a in loss._node.ctx.saved] == [(7, 4), (11, 4)]
    with minitx.no_grad():
        quiet = linear_cross_entropy(hidden, weight, target, chunk=3)
    assert quiet._node is None and quiet.item() == loss.item()
