"""Training WordPiece and byte-level BPE vocabularies.

The fast merge learner (merges.py: incremental pair counts + a lazy heap) is checked against a naive one
written here that recounts every pair from scratch before each merge — the textbook algorithm.
"""
from collections import Counter

import pydoc_data.topics
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minitx.tokenizers import BasicTokenizer, bytes_to_unicode, learn_merges, train_bpe, train_wordpiece

pytestmark = pytest.mark.tokenizers

DOCS = list(pydoc_data.topics.topics.values())[:20]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def naive_merges(word_counts, num_symbols, join, min_frequency, score):
    """Recount everything before each merge; best = highest score, ties -> smallest pair."""
    words = {tuple(w): n for w, n in word_counts.items()}
    known = {s for w in words for s in w}
    merges, made = [], 0
    while made < num_symbols:
        pairs, symbols = Counter(), Counter()
        for w, n in words.items():
            for s in w:
                symbols[s] += n
            for p in zip(w, w[1:]):
                pairs[p] += n
        candidates = [p for p, c in pairs.items() if c >= min_frequency]
        if not candidates:
            break
        value = (lambda p: pairs[p]) if score == "count" else \
            (lambda p: pairs[p] / (symbols[p[0]] * symbols[p[1]]))
        best = min(candidates, key=lambda p: (-value(p), p))
        merges.append(best)
        new = join(*best)
        made += new not in known
        known.add(new)
        merged_words = Counter()
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged_words[tuple(out)] += n
        words = merged_words
    return merges


@settings(max_examples=40, deadline=None)
@given(words=st.dictionaries(st.text("abcab", min_size=1, max_size=7), st.integers(1, 6), max_size=12),
       num_symbols=st.integers(0, 12), min_frequency=st.integers(1, 4),
       score=st.sampled_from(["count", "likelihood"]))
def test_incremental_learner_equals_naive_recount(words, num_symbols, min_frequency, score):
    spelled = Counter()
    for w, n in words.items():
        spelled[tuple([w[0]] + ["##" + c for c in w[1:]])] += n
    join = lambda a, b: a + b[2:]  # noqa: E731  (WordPiece's join; "##" marks a continuation)
    assert learn_merges(spelled, num_symbols, join, min_frequency, score) == \
        naive_merges(spelled, num_symbols, join, min_frequency, score)


@pytest.fixture(scope="module")
def wordpiece():
    return train_wordpiece(DOCS, vocab_size=800, min_frequency=2)


def test_wordpiece_vocab_size_specials_and_determinism(wordpiece):
    assert wordpiece.vocab_size == 800
    assert [wordpiece.ids_to_tokens[i] for i in range(5)] == SPECIALS
    assert (wordpiece.pad_token_id, wordpiece.unk_token_id, wordpiece.cls_token_id) == (0, 1, 2)
    again = train_wordpiece(list(reversed(DOCS)), vocab_size=800, min_frequency=2)  # corpus order is irrelevant
    assert again.vocab == wordpiece.vocab


def test_wordpiece_round_trips_training_text_without_unk(wordpiece):
    basic = BasicTokenizer()
    for doc in DOCS[:5]:
        ids = wordpiece.encode(doc, add_special_tokens=False)
        assert wordpiece.unk_token_id not in ids
        assert wordpiece.decode(ids, clean_up_tokenization_spaces=False) == " ".join(basic.tokenize(doc))


def test_wordpiece_min_frequency_and_save(wordpiece, tmp_path):
    # Every character of the corpus is in the vocabulary; with an impossible min_frequency nothing else is.
    only_alphabet = train_wordpiece(DOCS, vocab_size=800, min_frequency=10 ** 9)
    assert only_alphabet.vocab_size < 800
    assert all(t in SPECIALS or len(t.removeprefix("##")) == 1 for t in only_alphabet.vocab)
    assert set(only_alphabet.vocab) <= set(wordpiece.vocab)
    wordpiece.save_pretrained(tmp_path)
    lines = (tmp_path / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert lines == [wordpiece.ids_to_tokens[i] for i in range(wordpiece.vocab_size)]
    pytest.importorskip("transformers")
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy
    text = DOCS[3][:500]
    assert BertTokenizerLegacy.from_pretrained(tmp_path).encode(text) == wordpiece.encode(text)


@pytest.fixture(scope="module")
def bpe():
    return train_bpe(DOCS, vocab_size=600, min_frequency=2)


def test_bpe_vocab_layout_size_and_determinism(bpe):
    table = bytes_to_unicode()
    assert bpe.vocab_size == 600
    assert bpe.ids_to_tokens[0] == "<|endoftext|>"
    assert [bpe.ids_to_tokens[1 + b] for b in range(256)] == [table[b] for b in range(256)]
    for a, b in bpe.merges:  # every merge only uses tokens that exist before it, and makes a vocab token
        assert bpe.vocab[a + b] > max(bpe.vocab[a], bpe.vocab[b])
    again = train_bpe(list(reversed(DOCS)), vocab_size=600, min_frequency=2)
    assert again.vocab == bpe.vocab and again.merges == bpe.merges


def test_bpe_min_frequency_is_honoured():
    # pre-tokens "abab", " abab" x2, "cdcd": (a,b) x6 -> merged; then (ab,ab) x3 -> merged;
    # (Ġ,ab) x2 and (c,d) x2 stay below min_frequency=3
    corpus = ["abab abab abab", "cdcd"]
    tok = train_bpe(corpus, vocab_size=300, min_frequency=3, special_tokens=())
    assert tok.merges == [("a", "b"), ("ab", "ab")]
    assert tok.vocab_size == 256 + 2
    assert train_bpe(corpus, vocab_size=300, min_frequency=100, special_tokens=()).merges == []


def test_training_input_errors():
    with pytest.raises(TypeError, match="iterable of str"):
        train_wordpiece("a single string", vocab_size=10)
    with pytest.raises(TypeError, match="corpus item"):
        train_bpe(["ok", 3], vocab_size=300)


def test_wordpiece_count_score_keeps_frequent_words_whole():
    lines = [line for text in pydoc_data.topics.topics.values() for line in text.splitlines()]
    by_count = train_wordpiece(lines, vocab_size=800, score="count")
    by_likelihood = train_wordpiece(lines, vocab_size=800, score="likelihood")
    assert by_count.tokenize("the statement") == ["the", "statement"]
    assert len(by_likelihood.tokenize("the statement")) > 2
    with pytest.raises(ValueError, match="score"):
        train_wordpiece(lines[:10], vocab_size=300, score="frequency")
