"""minitx.profiler on one small BERT training step: every op is reported, forward and backward, with
sane times and byte counts; nothing is recorded outside the block."""
import numpy as np
import pytest

import minitx
from minitx import autograd
from minitx.models.bert import BertConfig, BertForPreTraining

pytestmark = pytest.mark.models


def bert_step():
    minitx.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16)
    model = BertForPreTraining(config)
    ids = np.random.default_rng(0).integers(1, 50, (2, 8))
    labels = np.full_like(ids, -100)
    labels[:, 3] = [4, 7]
    return model, ids, labels


def test_profile_reports_forward_and_backward_ops(backend_name):
    model, ids, labels = bert_step()
    with minitx.profiler.profile() as prof:
        model(ids, labels=labels, next_sentence_label=np.array([0, 1])).loss.backward()
    assert autograd.active_profiler is None
    rows = prof.rows()
    ops = {(r["op"], r["phase"]) for r in rows}
    for op in ("LayerNorm", "Embedding", "CrossEntropy"):
        assert (op, "forward") in ops and (op, "backward") in ops, op
    assert all(r["seconds"] > 0 and r["calls"] > 0 for r in rows)
    expected_backend = "numpy" if backend_name == "numpy" else f"cpp/{minitx.kernels.info()['isa']}"
    assert {r["backend"] for r in rows} == {expected_backend}
    # the embedding's forward output is (B, L, H) float32; its backward returns the (V, H) table gradient
    embedding = {r["phase"]: r for r in rows if r["op"] == "Embedding"}
    assert embedding["forward"]["output_bytes"] == 2 * 8 * 16 * 4 + 1 * 8 * 16 * 4 + 2 * 8 * 16 * 4
    assert embedding["backward"]["output_bytes"] == (50 + 16 + 2) * 16 * 4
    assert sum(r["saved_bytes"] for r in rows) > 0
    table = prof.table()
    assert "LayerNorm" in table and "backward" in table and "op time" in table


def test_no_profile_no_records():
    model, ids, labels = bert_step()
    with minitx.profiler.profile() as prof:
        pass
    model(ids, labels=labels).loss.backward()
    assert prof.rows() == []
