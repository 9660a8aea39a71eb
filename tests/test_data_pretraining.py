"""BERT MLM + NSP pretraining data: invariants checked exactly, proportions checked statistically.

Statistical bounds: a count k of n Bernoulli(p) trials is accepted when |k - np| <= 4.5 sqrt(np(1-p))
(a false failure has probability < 1e-5; the seeds are fixed so a run is deterministic anyway).
"""
import math
import random
import re

import numpy as np
import pytest

from minitx.data.collate import batches, collate
from minitx.data.corpus import builtin_corpus
from minitx.data.pretraining import (CLS, MASK, PAD, SEP, DynamicMaskingDataset, PretrainingConfig,
                                     StaticMaskingDataset, Vocab, create_masked_lm_predictions,
                                     create_segment_pairs, mask_candidates, truncate_seq_pair)

pytestmark = pytest.mark.data

SPECIALS = [PAD, "[UNK]", CLS, SEP, MASK]
Z = 4.5


def within_binomial(k: int, n: int, p: float) -> bool:
    return abs(k - n * p) <= Z * math.sqrt(n * p * (1 - p))


def toy_tokenize(text: str) -> list:
    """Lower-cased words and punctuation; words longer than 6 letters split WordPiece-style into
    a 4-letter head and '##'-prefixed 3-letter pieces, so whole-word masking has work to do."""
    pieces = []
    for word in re.findall(r"\w+|[^\w\s]", text.lower()):
        if len(word) <= 6:
            pieces.append(word)
        else:
            pieces.append(word[:4])
            pieces.extend("##" + word[k:k + 3] for k in range(4, len(word), 3))
    return pieces


@pytest.fixture(scope="module")
def docs():
    return builtin_corpus()[:30]


@pytest.fixture(scope="module")
def vocab(docs):
    words = sorted({t for d in docs for s in d for t in toy_tokenize(s)})
    return SPECIALS + words


@pytest.fixture(scope="module")
def static_ds(docs, vocab):
    cfg = PretrainingConfig(max_seq_length=64, max_predictions_per_seq=8, dupe_factor=2)
    return StaticMaskingDataset(docs, toy_tokenize, vocab, cfg, seed=1)


def original_tokens(f: dict) -> np.ndarray:
    """Undo the masking: predicted positions hold their original id in labels."""
    return np.where(f["labels"] != -100, f["labels"], f["input_ids"])


# --- exact invariants -------------------------------------------------------------------------------------

def check_instance(f: dict, v: Vocab, cfg: PretrainingConfig) -> None:
    ids, tt, am, labels = f["input_ids"], f["token_type_ids"], f["attention_mask"], f["labels"]
    L = len(ids)
    assert 5 <= L <= cfg.max_seq_length
    assert all(a.dtype == np.int64 and a.shape == (L,) for a in (ids, tt, am, labels))
    assert (am == 1).all() and f["next_sentence_label"] in (0, 1)
    cls_id, sep_id = v.token_to_id[CLS], v.token_to_id[SEP]
    orig = original_tokens(f)
    # [CLS] A [SEP] B [SEP]; segment A (with [CLS] and the first [SEP]) has type 0, B (with the last [SEP]) 1.
    sep_positions = np.flatnonzero(orig == sep_id)
    assert orig[0] == cls_id and not (orig[1:] == cls_id).any()
    assert len(sep_positions) == 2 and sep_positions[1] == L - 1
    n_a = sep_positions[0] + 1
    assert n_a >= 3 and L - n_a >= 2                       # both segments non-empty
    np.testing.assert_array_equal(tt, np.r_[np.zeros(n_a, np.int64), np.ones(L - n_a, np.int64)])
    # Specials are never chosen: their inputs are intact and their labels ignored.
    special = np.r_[0, sep_positions]
    assert (ids[special] == orig[special]).all() and (labels[special] == -100).all()
    # Exactly num_to_predict predictions (BERT: 15% of the length incl. specials, >= 1, <= the cap).
    expected = min(cfg.max_predictions_per_seq, max(1, int(round(L * cfg.masked_lm_prob))))
    assert (labels != -100).sum() == expected
    # A predicted position is [MASK], a random token, or unchanged; all others are unchanged.
    assert (ids[labels == -100] == orig[labels == -100]).all()


@pytest.mark.hw5_mlm_masking
def test_static_instances_invariants(static_ds):
    assert len(static_ds) > 100
    for f in static_ds.instances:
        check_instance(f, static_ds.vocab, static_ds.config)


@pytest.mark.hw5_mlm_masking
def test_static_is_deterministic_from_seed(docs, vocab, static_ds):
    again = StaticMaskingDataset(docs, toy_tokenize, vocab, static_ds.config, seed=1)
    other = StaticMaskingDataset(docs, toy_tokenize, vocab, static_ds.config, seed=2)
    assert len(again) == len(static_ds)
    for f, g in zip(static_ds.instances, again.instances):
        assert f.keys() == g.keys() and all(np.array_equal(f[k], g[k]) for k in f)
    assert any(len(f["input_ids"]) != len(g["input_ids"]) or not np.array_equal(f["input_ids"], g["input_ids"])
               for f, g in zip(static_ds.instances, other.instances))


@pytest.mark.hw5_mlm_masking
def test_dupe_factor_copies_are_masked_differently(docs, vocab):
    one = docs[:1] + docs[1:2]
    cfg = PretrainingConfig(max_seq_length=64, dupe_factor=1, short_seq_prob=0.0)
    base = StaticMaskingDataset(one, toy_tokenize, vocab, cfg, seed=3)
    cfg3 = PretrainingConfig(max_seq_length=64, dupe_factor=3, short_seq_prob=0.0)
    ds = StaticMaskingDataset(one, toy_tokenize, vocab, cfg3, seed=3)
    assert 2 * len(base) < len(ds) < 4 * len(base)
    masks = {tuple(np.flatnonzero(f["labels"] != -100)) + tuple(original_tokens(f)) for f in ds.instances}
    assert len(masks) == len(ds)   # no two instances identical (segments or masks differ)


@pytest.mark.hw5_mlm_masking
def test_dynamic_masks_change_per_epoch_but_are_reproducible(docs, vocab):
    cfg = PretrainingConfig(max_seq_length=64, dupe_factor=1)
    ds = DynamicMaskingDataset(docs, toy_tokenize, vocab, cfg, seed=5)
    v = Vocab(vocab)
    epoch0 = [ds[i] for i in range(len(ds))]
    ds.set_epoch(1)
    epoch1 = [ds[i] for i in range(len(ds))]
    for f, g in zip(epoch0, epoch1):
        check_instance(f, v, cfg)
        check_instance(g, v, cfg)
        np.testing.assert_array_equal(original_tokens(f), original_tokens(g))   # same segments
        assert f["next_sentence_label"] == g["next_sentence_label"]
    changed = sum(not np.array_equal(f["labels"], g["labels"]) for f, g in zip(epoch0, epoch1))
    assert changed >= 0.9 * len(ds)
    # Epoch 1 again, and epoch 1 of a fresh dataset, are bit-identical.
    fresh = DynamicMaskingDataset(docs, toy_tokenize, vocab, cfg, seed=5)
    fresh.set_epoch(1)
    for i in (0, len(ds) // 2, len(ds) - 1):
        for k in epoch1[i]:
            np.testing.assert_array_equal(ds[i][k], epoch1[i][k])
            np.testing.assert_array_equal(fresh[i][k], epoch1[i][k])


def test_truncate_seq_pair_trims_longer_segment_from_both_ends():
    rng = random.Random(0)
    fronts = backs = 0
    for _ in range(300):
        a, b = list(range(30)), list(range(100, 110))
        truncate_seq_pair(a, b, 25, rng)
        assert len(a) + len(b) == 25 and b == list(range(100, 110))   # only the longer one was cut
        assert a == list(range(a[0], a[0] + len(a)))                   # a contiguous window survives
        fronts += a[0]
        backs += 29 - a[-1]
    assert within_binomial(fronts, fronts + backs, 0.5)


@pytest.mark.hw5_mlm_masking
def test_never_masks_specials_even_in_the_middle():
    tokens = [CLS, "a", PAD, "b", SEP, "c", PAD, SEP]
    assert [c for group in mask_candidates(tokens, False) for c in group] == [1, 3, 5]
    for seed in range(20):
        out, positions, labels = create_masked_lm_predictions(tokens, 0.5, 10, ["x"], random.Random(seed))
        assert set(positions) <= {1, 3, 5} and [tokens[p] for p in positions] == labels


# --- whole-word masking -----------------------------------------------------------------------------------

@pytest.mark.hw5_mlm_masking
def test_whole_word_masking_masks_all_pieces_together(docs, vocab):
    cfg = PretrainingConfig(max_seq_length=64, max_predictions_per_seq=12, dupe_factor=2,
                            do_whole_word_mask=True)
    ds = StaticMaskingDataset(docs, toy_tokenize, vocab, cfg, seed=7)
    words = Vocab(vocab).words
    multi_piece_words_masked = 0
    for f in ds.instances:
        tokens = [words[i] for i in original_tokens(f)]
        predicted = f["labels"] != -100
        n = predicted.sum()
        assert 1 <= n <= min(cfg.max_predictions_per_seq, max(1, round(len(tokens) * cfg.masked_lm_prob)))
        for group in mask_candidates(tokens, do_whole_word_mask=True):
            flags = predicted[group]
            assert flags.all() or not flags.any(), [tokens[i] for i in group]
            multi_piece_words_masked += len(group) > 1 and flags.all()
    assert multi_piece_words_masked > 50


# --- proportions ------------------------------------------------------------------------------------------

def unique_token_documents(n_docs: int, n_sentences: int, sentence_len: int) -> list:
    """Token documents where every token names its (document, sentence, position)."""
    return [[[(d, s, k) for k in range(sentence_len)] for s in range(n_sentences)] for d in range(n_docs)]


def test_nsp_is_half_random_among_free_choices_and_b_is_really_next_or_random():
    docs = unique_token_documents(n_docs=30, n_sentences=1000, sentence_len=3)
    rng = random.Random(11)
    pairs = [(d, p) for _ in range(2) for d in range(len(docs))
             for p in create_segment_pairs(docs, d, 64, 0.1, rng)]
    forced = n_next = 0
    for d, p in pairs:
        a_docs, b_docs = {t[0] for t in p.tokens_a}, {t[0] for t in p.tokens_b}
        assert a_docs == {d} and len(b_docs) == 1
        assert 1 <= len(p.tokens_a) and 1 <= len(p.tokens_b) and len(p.tokens_a) + len(p.tokens_b) <= 61
        if p.is_random_next:
            assert b_docs != {d}
            # A single-sentence chunk (only possible at the end of a document here) is always random.
            forced += all(t[1] == len(docs[d]) - 1 for t in p.tokens_a)
        else:
            n_next += 1
            assert max(t[1:] for t in p.tokens_a) < min(t[1:] for t in p.tokens_b)   # B follows A
    n_free = len(pairs) - forced
    assert forced <= 60 and n_free > 3000
    assert within_binomial(n_next, n_free, 0.5), (n_next, n_free)


def test_short_seq_prob_sets_a_shorter_target_per_document():
    # One-token sentences: the first chunk of a document has exactly target_seq_length tokens, and an
    # actual-next pair keeps all of them; target < max_num_tokens with probability p * (M-2)/(M-1).
    max_seq_length, M = 32, 29
    docs = unique_token_documents(n_docs=3000, n_sentences=40, sentence_len=1)
    for p in (0.0, 0.1, 0.5):
        rng = random.Random(13)
        lengths = []
        for d in range(len(docs)):
            first = next(create_segment_pairs(docs, d, max_seq_length, p, rng))
            if not first.is_random_next:
                lengths.append(len(first.tokens_a) + len(first.tokens_b))
        short = sum(n < M for n in lengths)
        assert all(2 <= n <= M for n in lengths)
        if p == 0.0:
            assert short == 0
        else:
            assert within_binomial(short, len(lengths), p * (M - 2) / (M - 1)), (p, short, len(lengths))


@pytest.mark.hw5_mlm_masking
def test_masking_is_80_mask_10_random_10_unchanged():
    words = SPECIALS + [f"w{i}" for i in range(995)]
    V = len(words)
    rng = random.Random(17)
    counts = {"mask": 0, "same": 0, "other": 0}
    n_predicted = 0
    for _ in range(1200):
        tokens = [CLS] + [f"w{rng.randint(0, 994)}" for _ in range(60)] + [SEP] + \
                 [f"w{rng.randint(0, 994)}" for _ in range(64)] + [SEP]
        out, positions, labels = create_masked_lm_predictions(tokens, 0.15, 20, words, rng)
        assert len(positions) == min(20, round(len(tokens) * 0.15)) == 19
        assert positions == sorted(set(positions))
        n_predicted += len(positions)
        for pos, label in zip(positions, labels):
            assert tokens[pos] == label
            counts["mask" if out[pos] == MASK else "same" if out[pos] == label else "other"] += 1
        assert all(out[i] == tokens[i] for i in range(len(tokens)) if i not in positions)
    # Unchanged = the 10% "keep" branch + the 10% random branch drawing the original token (1/V).
    assert within_binomial(counts["mask"], n_predicted, 0.8)
    assert within_binomial(counts["same"], n_predicted, 0.1 + 0.1 / V)
    assert within_binomial(counts["other"], n_predicted, 0.1 * (1 - 1 / V))


@pytest.mark.hw5_mlm_masking
def test_masked_positions_are_uniform_over_non_special_tokens():
    rng = random.Random(19)
    tokens = [CLS] + ["a"] * 20 + [SEP] + ["b"] * 17 + [SEP]
    hits = np.zeros(len(tokens), dtype=int)
    trials = 3000
    for _ in range(trials):
        _, positions, _ = create_masked_lm_predictions(tokens, 0.15, 20, ["z"], rng)
        hits[positions] += 1
    assert hits[[0, 21, 39]].sum() == 0
    per_position = 6 / 37                      # round(40 * 0.15) = 6 of the 37 candidates
    for i in set(range(len(tokens))) - {0, 21, 39}:
        assert within_binomial(hits[i], trials, per_position), (i, hits[i])


# --- batching ---------------------------------------------------------------------------------------------

@pytest.mark.hw5_mlm_masking
def test_collate_pads_to_longest_int64(static_ds):
    feats = [static_ds[i] for i in range(8)]
    pad_id = static_ds.vocab.pad_id
    b = collate(feats, pad_token_id=pad_id)
    L = max(len(f["input_ids"]) for f in feats)
    for key in ("input_ids", "token_type_ids", "attention_mask", "labels"):
        assert b[key].shape == (8, L) and b[key].dtype == np.int64
    assert b["next_sentence_label"].shape == (8,) and b["next_sentence_label"].dtype == np.int64
    for row, f in enumerate(feats):
        n = len(f["input_ids"])
        np.testing.assert_array_equal(b["input_ids"][row, :n], f["input_ids"])
        assert (b["input_ids"][row, n:] == pad_id).all() and (b["labels"][row, n:] == -100).all()
        assert (b["attention_mask"][row, n:] == 0).all() and (b["token_type_ids"][row, n:] == 0).all()
    seen = np.concatenate([bt["next_sentence_label"] for bt in batches(static_ds, 7, shuffle=True, seed=0)])
    assert len(seen) == len(static_ds)
    assert sorted(seen) == sorted(int(f["next_sentence_label"]) for f in static_ds.instances)


def test_vocab_errors_are_clear():
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        Vocab([CLS, SEP, "a"])
    with pytest.raises(KeyError, match="'zzz'"):
        Vocab([CLS, SEP, MASK, "a"]).ids(["a", "zzz"])


def test_pretraining_recipe_masks_more_for_training_but_evaluates_at_bert_rate(docs, vocab):
    """BertPretrainingSettings.train_masked_lm_prob = 0.4: training instances predict ~40% of their tokens (cap
    included), the held-out ones BERT's 15%, once."""
    from minitx.recipes.pretrain_bert import BertPretrainingSettings, masking_configs

    train_cfg, eval_cfg = masking_configs(BertPretrainingSettings(max_seq_length=64, train_masked_lm_prob=0.4))
    assert (train_cfg.masked_lm_prob, train_cfg.max_predictions_per_seq) == (0.4, 26)
    assert (eval_cfg.masked_lm_prob, eval_cfg.max_predictions_per_seq, eval_cfg.dupe_factor) == (0.15, 10, 1)
    for cfg, share in ((train_cfg, 0.4), (eval_cfg, 0.15)):
        ds = StaticMaskingDataset(docs, toy_tokenize, vocab, cfg, seed=3)
        for i in range(len(ds)):
            check_instance(ds[i], ds.vocab, cfg)
        predicted = sum(int((ds[i]["labels"] != -100).sum()) for i in range(len(ds)))
        assert abs(predicted / sum(len(ds[i]["input_ids"]) for i in range(len(ds))) - share) < 0.03
