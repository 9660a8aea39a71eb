"""Byte-level BPE (GPT-2): pre-tokenizer vs HF ``tokenizers`` (and GPT-2's ``regex`` pattern), ids vs HF's
ByteLevelBPETokenizer / GPT2Tokenizer loaded from the files we save, and decode(encode(s)) == s for any str.

Known difference: a code point unassigned in this Python's Unicode database (category Cn) but assigned as a
letter/number in the newer tables of the Rust ``tokenizers`` is split differently, so the parity tests draw
assigned characters (hypothesis uses Python's database too).
"""
import pydoc_data.topics
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minitx.tokenizers import ByteLevelBPETokenizer, bytes_to_unicode, pretokenize, train_bpe

pytestmark = pytest.mark.tokenizers

FRAGMENTS = ["the ", " the", "  ", "   x", "\n\n", "\t", " \n ", "don't", "'s", "'S", "I'll", "we've", "1234", " 42",
             "3.14", "é", "e\u0301", "中文", "😀", "👍🏽", "<|endoftext|>", "x<|endoftext|>y", "\u00a0", "\u3000",
             "\x85", "\x1c", "\x00", "\u2028", "?!", " ...", "Ⅻ", "①", "a_b", "\U0001d400"]
ASSIGNED = st.characters(exclude_categories=("Cs", "Cn"))
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def texts(alphabet=ASSIGNED):
    piece = st.one_of(st.text(alphabet, max_size=12), st.sampled_from(FRAGMENTS))
    return st.lists(piece, max_size=8).map("".join)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small byte-level BPE trained by minitx, saved, and the same files loaded by HF ``tokenizers``."""
    hf_tokenizers = pytest.importorskip("tokenizers")
    docs = [t for t in pydoc_data.topics.topics.values()][:25]
    tok = train_bpe(docs, vocab_size=700, min_frequency=2)
    directory = tok.save_pretrained(tmp_path_factory.mktemp("bpe"))
    hf = hf_tokenizers.ByteLevelBPETokenizer(f"{directory}/vocab.json", f"{directory}/merges.txt",
                                             add_prefix_space=False)
    hf.add_special_tokens(["<|endoftext|>"])  # as GPT2Tokenizer does: typed in the text, it stays whole
    return tok, hf, directory


def test_bytes_to_unicode_is_gpt2s_table():
    pre_tokenizers = pytest.importorskip("tokenizers").pre_tokenizers
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256)) and len(set(table.values())) == 256
    assert set(table.values()) == set(pre_tokenizers.ByteLevel.alphabet())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    for b in range(128):  # one-byte characters: HF's mapping of each byte must be ours
        assert byte_level.pre_tokenize_str(chr(b))[0][0] == table[b]
    assert (table[ord(" ")], table[ord("\n")]) == ("Ġ", "Ċ")


@SETTINGS
@given(text=texts())
def test_pretokenize_matches_hf_byte_level_and_gpt2_regex(text):
    pre_tokenizers = pytest.importorskip("tokenizers").pre_tokenizers
    table = bytes_to_unicode()
    ours = pretokenize(text)
    assert "".join(ours) == text
    hf = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True).pre_tokenize_str(text)
    assert ["".join(table[b] for b in piece.encode()) for piece in ours] == [piece for piece, _ in hf]
    regex = pytest.importorskip("regex")  # GPT-2's encoder.py pattern, in the module it was written for
    gpt2 = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
    assert ours == gpt2.findall(text)


@SETTINGS
@given(text=texts())
def test_ids_match_hf_byte_level_bpe_with_same_files(trained, text):
    tok, hf, _ = trained
    ids = tok.encode(text)
    assert ids == hf.encode(text).ids
    assert tok.decode(ids) == hf.decode(ids, skip_special_tokens=False) == text


@settings(max_examples=100, deadline=None)
@given(text=st.text(st.characters(exclude_categories=("Cs",))))
def test_decode_encode_round_trips_any_str(trained, text):
    tok = trained[0]
    assert tok.decode(tok.encode(text)) == text


def test_round_trip_of_lone_surrogates_and_cut_characters(trained):
    tok = trained[0]
    for text in ["\ud800", "a\udfffb", "", "<|endoftext|>"]:
        assert tok.decode(tok.encode(text)) == text
    ids = tok.encode("😀")                      # 4 bytes; a prefix of the ids decodes with U+FFFD, no error
    assert tok.decode(ids[:1]) in ("\ufffd", "😀")
    assert tok.decode(tok.encode("a<|endoftext|>b"), skip_special_tokens=True) == "ab"


def test_hf_gpt2_tokenizer_on_our_files(trained):
    transformers = pytest.importorskip("transformers")
    tok, _, directory = trained
    gpt2 = transformers.GPT2Tokenizer.from_pretrained(directory)  # reads vocab.json + merges.txt
    text = "Hello world, it's 2024!\n\n  Ünïcödé 中文 😀 <|endoftext|> done."
    assert gpt2(text)["input_ids"] == tok.encode(text)


def test_save_load_round_trip_and_errors(trained, tmp_path):
    tok, _, directory = trained
    again = ByteLevelBPETokenizer.from_pretrained(directory)
    text = "The same ids after saving and loading."
    assert again.encode(text) == tok.encode(text) and again.merges == tok.merges
    with pytest.raises(FileNotFoundError, match="vocab.json"):
        ByteLevelBPETokenizer.from_pretrained(tmp_path)
    with pytest.raises(TypeError, match="must be a str"):
        tok.encode(b"bytes")
    with pytest.raises(TypeError, match="must be a str"):
        tok([1, 2])


def test_call_pads_and_truncates(trained):
    tok = ByteLevelBPETokenizer(trained[0].vocab, trained[0].merges, pad_token="<|endoftext|>")
    enc = tok(["a longer sentence here", "hi"], padding=True, return_tensors="np")
    assert enc["input_ids"].shape == enc["attention_mask"].shape
    assert enc["attention_mask"][1].sum() == len(tok.encode("hi"))
    assert tok("a longer sentence here", max_length=2)["input_ids"] == tok.encode("a longer sentence here")[:2]
    with pytest.raises(ValueError, match="pad token"):
        trained[0](["a", "bb"], padding=True)
