"""Models without a network: KV cache, losses, input types, save/load round trips, heads from base checkpoints."""
import warnings

import numpy as np
import pytest
import torch
import transformers

import minitx
from minitx.models.bert import (
    BertConfig,
    BertForMaskedLM,
    BertForPreTraining,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)
from minitx.models.gpt2 import GPT2Config, GPT2LMHeadModel, GPT2Model, position_ids_from_attention_mask
from minitx.nn import functional as F

pytestmark = pytest.mark.models

BERT = dict(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
            max_position_embeddings=32, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=3)
GPT2 = dict(vocab_size=60, n_embd=16, n_layer=2, n_head=2, n_positions=32, resid_pdrop=0.0, embd_pdrop=0.0,
            attn_pdrop=0.0)


def ids_batch(seed=0, shape=(2, 7), vocab=60):
    return np.random.default_rng(seed).integers(1, vocab, shape)


# Homeworks 2 and 3 are the NumPy reference kernels: with the "cpp" backend these tests run the C++ kernels and
# never reach them, so only the "numpy" cases carry the markers (added by conftest.py through homework_marker).
NUMPY_BACKEND_HOMEWORK = {"test_gpt2_kv_cache_matches_full_forward": ("hw2_softmax_layernorm", "hw3_attention"),
                          "test_bert_head_losses": ("hw2_softmax_layernorm", "hw3_attention")}


def homework_marker(item):
    if item.callspec.params.get("backend_name") == "numpy":
        return NUMPY_BACKEND_HOMEWORK.get(item.originalname)
    return None


def test_gpt2_kv_cache_matches_full_forward(backend_name):
    minitx.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(**GPT2)).eval()
    ids = ids_batch()
    full = model(ids).logits.numpy()
    out = model(ids[:, :2], use_cache=True)
    steps, cache = [out.logits.numpy()], out.past_key_values
    for i in range(2, ids.shape[1]):
        out = model(ids[:, i:i + 1], past_key_values=cache, use_cache=True)
        steps.append(out.logits.numpy())
        cache = out.past_key_values
    assert len(cache) == 2 and cache[0][0].shape == (2, 2, 7, 8)
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)


def test_position_ids_for_left_padding_follow_hf_generate():
    mask = np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    expected = np.array([[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]])
    np.testing.assert_array_equal(position_ids_from_attention_mask(mask), expected)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(**GPT2))
    theirs = hf._prepare_position_ids_for_generation(torch.zeros(2, 5, dtype=torch.long),
                                                     {"attention_mask": torch.tensor(mask)})
    np.testing.assert_array_equal(position_ids_from_attention_mask(mask), theirs.numpy())


def test_left_padded_prompt_with_position_ids_equals_unpadded():
    minitx.manual_seed(1)
    model = GPT2LMHeadModel(GPT2Config(**GPT2)).eval()
    prompt = ids_batch(1, (1, 4))
    padded = np.concatenate([np.zeros((1, 2), np.int64), prompt], axis=1)
    mask = np.array([[0, 0, 1, 1, 1, 1]])
    got = model(padded, attention_mask=mask, position_ids=position_ids_from_attention_mask(mask)).logits.numpy()
    np.testing.assert_allclose(got[:, 2:], model(prompt).logits.numpy(), atol=1e-5)


def test_gpt2_loss_shifts_labels_like_hf():
    minitx.manual_seed(2)
    model = GPT2LMHeadModel(GPT2Config(**GPT2)).eval()
    ids = ids_batch(2)
    out = model(ids, labels=ids, return_full_logits=True)
    manual = F.cross_entropy(out.logits[:, :-1].reshape(-1, 60), ids[:, 1:].reshape(-1))
    assert abs(out.loss.item() - manual.item()) < 1e-6
    assert model.lm_head.weight is model.transformer.wte.weight  # tied


def test_inputs_may_be_numpy_lists_or_tensors():
    minitx.manual_seed(3)
    model = BertModel(BertConfig(**BERT)).eval()
    ids = ids_batch(3)
    a = model(ids).last_hidden_state.numpy()
    np.testing.assert_array_equal(model(minitx.tensor(ids)).last_hidden_state.numpy(), a)
    np.testing.assert_array_equal(model(ids.tolist()).last_hidden_state.numpy(), a)
    with pytest.raises(TypeError, match="integer ids"):
        model(ids.astype(np.float32))


def test_bert_head_losses(backend_name):
    minitx.manual_seed(4)
    ids = ids_batch(4)
    labels = np.full_like(ids, -100)
    labels[:, 2] = [5, 9]
    mlm = BertForMaskedLM(BertConfig(**BERT)).eval()
    out = mlm(ids, labels=labels, return_full_logits=True)
    manual = F.cross_entropy(out.logits[:, 2], np.array([5, 9]))
    assert abs(out.loss.item() - manual.item()) < 1e-5
    tok = BertForTokenClassification(BertConfig(**BERT)).eval()
    tags = np.where(labels == -100, -100, 1)
    out = tok(ids, labels=tags)
    assert out.logits.shape == (2, 7, 3)
    assert abs(out.loss.item() - F.cross_entropy(out.logits[:, 2], np.array([1, 1])).item()) < 1e-5
    pre = BertForPreTraining(BertConfig(**BERT)).eval()
    both = pre(ids, labels=labels, next_sentence_label=np.array([0, 1]))
    mlm_only = pre(ids, labels=labels).loss.item()
    nsp_only = pre(ids, next_sentence_label=np.array([0, 1])).loss.item()
    assert abs(both.loss.item() - (mlm_only + nsp_only)) < 1e-5


def test_multi_label_classification_uses_bce():
    minitx.manual_seed(5)
    model = BertForSequenceClassification(BertConfig(**BERT)).eval()
    targets = np.array([[1, 0, 1], [0, 0, 1]], dtype=np.float32)
    out = model(ids_batch(5), labels=targets)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(out.logits.numpy()),
                                                                    torch.tensor(targets))
    assert abs(out.loss.item() - expected.item()) < 1e-6


@pytest.mark.parametrize("cls, config", [
    (BertModel, BertConfig(**BERT)), (BertForMaskedLM, BertConfig(**BERT)),
    (BertForTokenClassification, BertConfig(**BERT)), (BertForSequenceClassification, BertConfig(**BERT)),
    (GPT2Model, GPT2Config(**GPT2)), (GPT2LMHeadModel, GPT2Config(**GPT2))])
def test_save_load_roundtrip_and_hf_reads_it(cls, config, tmp_path):
    minitx.manual_seed(6)
    model = cls(config).eval()
    model.save_pretrained(str(tmp_path))
    again = cls.from_pretrained(str(tmp_path))
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    theirs, info = getattr(transformers, cls.__name__).from_pretrained(str(tmp_path), output_loading_info=True)
    assert all(not v for v in info.values()), info  # HF finds every weight, no missing/unexpected
    ids = ids_batch(6)
    with torch.no_grad():
        out_t = theirs.eval()(torch.tensor(ids))
    out = model(ids)
    field = "logits" if hasattr(out, "logits") else "last_hidden_state"
    np.testing.assert_allclose(getattr(out, field).numpy(), getattr(out_t, field).numpy(), atol=1e-4)


def test_head_model_from_base_checkpoint_warns_about_new_heads(tmp_path):
    minitx.manual_seed(7)
    base = BertModel(BertConfig(**BERT)).eval()
    base.save_pretrained(str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = BertForSequenceClassification.from_pretrained(str(tmp_path))
    assert any("classifier.weight" in str(w.message) for w in caught)
    ids = ids_batch(7)
    np.testing.assert_array_equal(model.bert(ids).last_hidden_state.numpy(), base(ids).last_hidden_state.numpy())


def test_bert_position_embedding_types_are_checked():
    with pytest.raises(NotImplementedError, match="'relative_key'"):
        BertConfig(**BERT, position_embedding_type="relative_key")
    with pytest.raises(ValueError, match="alibi_slopes is given but position_embedding_type is 'absolute'"):
        BertConfig(**BERT, alibi_slopes=[1.0, 0.5])
    for bad in ([1.0], [1.0, -0.5], [1.0, float("nan")]):
        with pytest.raises(ValueError, match="alibi_slopes must be 2 finite numbers >= 0"):
            BertConfig(**BERT, position_embedding_type="alibi", alibi_slopes=bad)
    alibi = BertModel(BertConfig(**BERT, position_embedding_type="alibi"))
    assert alibi.embeddings.position_embeddings is None
    np.testing.assert_array_equal(alibi.encoder.alibi, [1 / 16, 1 / 256])  # the paper's slopes for 2 heads
    with pytest.raises(ValueError, match="position_ids given, but this model has no position embeddings"):
        alibi(ids_batch(), position_ids=np.arange(7)[None])
    longer = ids_batch(shape=(1, 40))  # no position table, so no max_position_embeddings limit (32 here)
    assert alibi(longer).last_hidden_state.shape == (1, 40, 16)
    with pytest.raises(ValueError, match="exceeds max_position_embeddings 32"):
        BertModel(BertConfig(**BERT))(longer)
