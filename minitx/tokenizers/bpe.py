"""Byte-level BPE, GPT-2's tokenizer (Radford et al. 2019, "Language Models are Unsupervised Multitask
Learners", §2.2; BPE: Sennrich et al. 2016, §3.1), and training it from a corpus.

Encoding a text:
1. Special tokens typed in the text (e.g. "<|endoftext|>") are cut out whole.
2. Pre-tokenize with GPT-2's regex: contractions, " ?letters", " ?digits", " ?other", runs of spaces —
   so a merge never crosses a word boundary and a word keeps its leading space ("Ġworld").
3. Each piece's UTF-8 bytes are written as printable characters (``bytes_to_unicode``: byte 0x20 " " -> "Ġ"),
   so 256 base symbols cover every string: no unknown token ever.
4. Apply the learned merges, lowest rank (earliest learned) first, until none applies.
Decoding is the inverse: tokens -> characters -> bytes -> UTF-8.

Files: ``vocab.json`` ({token: id}) and ``merges.txt`` ("#version: 0.2" then "a b" per merge, by rank),
the formats of GPT-2 and HF ``tokenizers``.ByteLevelBPETokenizer, which gives the same ids on the same files.
"""
import functools
import json
import os
import re
import unicodedata
from collections import Counter

from minitx.tokenizers.encoding import pad_batch, resolve_strategies, to_batch_encoding, truncate_pair
from minitx.tokenizers.merges import learn_merges

# Unicode's White_Space property (what \s means in GPT-2's `regex` pattern); Python's `re` \s would also
# take U+001C..U+001F.
WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009" \
             "\u200a\u2028\u2029\u202f\u205f\u3000"


@functools.lru_cache(maxsize=1)
def bytes_to_unicode():
    """{byte: printable char}: printable Latin-1 bytes map to themselves, the other 68 bytes (controls, space,
    ...) to U+0100 onwards, so a byte string becomes a readable str without spaces or control characters
    (GPT-2 ``encoder.py``): 0x20 " " -> "Ġ", 0x0A "\\n" -> "Ċ"."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _category_classes(majors):
    """{major category letter: regex character class (as ranges) of every code point in it}, one scan."""
    ranges = {m: [] for m in majors}
    start, current = 0, None
    for cp in range(0x110000 + 1):
        major = unicodedata.category(chr(cp))[0] if cp < 0x110000 else None
        major = major if major in ranges else None
        if major != current:
            if current is not None:
                ranges[current].append(f"\\U{start:08x}-\\U{cp - 1:08x}")
            start, current = cp, major
    return {m: "".join(r) for m, r in ranges.items()}


@functools.lru_cache(maxsize=1)
def gpt2_pattern():
    """GPT-2's pre-tokenization regex, written for the standard ``re`` module.

    GPT-2 (``encoder.py``) uses the third-party ``regex`` module:
        's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
    ``re`` has no \\p{L} (letters) / \\p{N} (numbers), so we spell those classes out from ``unicodedata``
    categories, and \\s as the White_Space set. Built once, on first use (~0.5 s: it scans all code points).
    """
    classes = _category_classes("LN")
    letters, numbers = classes["L"], classes["N"]
    space = re.escape(WHITESPACE)
    return re.compile(
        rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{letters}]+| ?[{numbers}]+| ?[^{space}{letters}{numbers}]+"
        rf"|[{space}]+(?![^{space}])|[{space}]+"
    )


def pretokenize(text):
    """GPT-2's split of a text into pieces: "Hello  world's" -> ['Hello', ' ', ' world', "'s"]."""
    return gpt2_pattern().findall(text)


def _utf8(text):
    # 'surrogatepass' so even a lone surrogate (not valid UTF-8) encodes, and decodes back, instead of raising
    return text.encode("utf-8", "surrogatepass")


def _from_utf8(data):
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:  # a cut in the middle of a character (e.g. decoding a prefix of the ids)
        return data.decode("utf-8", "replace")


def _check_text(value, name):
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str or a list of str, got {type(value).__name__}: {value!r:.60}")


class ByteLevelBPETokenizer:
    """GPT-2's tokenizer. ``encode(text) -> ids`` and ``decode(ids) -> text`` round-trip any str.

    >>> tok = ByteLevelBPETokenizer.from_pretrained("my_bpe/")      # vocab.json + merges.txt
    >>> tok.decode(tok.encode("Hello world"))
    'Hello world'
    """

    def __init__(self, vocab, merges, special_tokens=("<|endoftext|>",), pad_token=None, model_max_length=1024):
        self.vocab = dict(vocab)                                 # token -> id
        self.ids_to_tokens = {i: t for t, i in self.vocab.items()}
        self.merges = [tuple(m) for m in merges]
        self.ranks = {m: r for r, m in enumerate(self.merges)}   # (a, b) -> rank: lower merges first
        self.special_tokens = [t for t in special_tokens if t in self.vocab]
        self.pad_token = pad_token
        self.model_max_length = model_max_length
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        missing = [c for c in self.byte_encoder.values() if c not in self.vocab]
        if missing:
            raise ValueError(f"the vocabulary lacks {len(missing)} of the 256 byte symbols (e.g. {missing[:3]}): "
                             "it is not a byte-level BPE vocabulary")
        specials = sorted(self.special_tokens, key=len, reverse=True)
        self._special_re = re.compile("(" + "|".join(map(re.escape, specials)) + ")") if specials else None
        self._cache = {}

    # ---- loading and saving -------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, directory, **kwargs):
        """Loads ``vocab.json`` + ``merges.txt`` from a directory."""
        return cls.from_files(os.path.join(directory, "vocab.json"), os.path.join(directory, "merges.txt"), **kwargs)

    @classmethod
    def from_files(cls, vocab_path, merges_path, **kwargs):
        for path in (vocab_path, merges_path):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"no byte-level BPE file: '{path}' does not exist")
        with open(vocab_path, encoding="utf-8") as f:
            vocab = json.load(f)
        merges = []
        with open(merges_path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line or line.startswith("#version"):
                    continue
                parts = line.split(" ")
                if len(parts) != 2:
                    raise ValueError(f"{merges_path}:{n}: a merge must be two tokens separated by one space, "
                                     f"got {line!r}")
                merges.append(tuple(parts))
        return cls(vocab, merges, **kwargs)

    def save_pretrained(self, directory):
        """Writes ``vocab.json`` and ``merges.txt`` (GPT-2 / HF ``tokenizers`` formats)."""
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(self.vocab, f, ensure_ascii=False)
        with open(os.path.join(directory, "merges.txt"), "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n")
            f.writelines(f"{a} {b}\n" for a, b in self.merges)
        return directory

    @property
    def vocab_size(self):
        return len(self.vocab)

    def __len__(self):
        return len(self.vocab)

    @property
    def pad_token_id(self):
        return None if self.pad_token is None else self.vocab[self.pad_token]

    # ---- text -> tokens -> ids ------------------------------------------------------------------------
    def bpe(self, piece):
        """One pre-tokenized piece (already byte-mapped) -> its tokens: merge the lowest-rank adjacent pair,
        everywhere it occurs (left to right), until no adjacent pair is a merge."""
        if piece in self._cache:
            return self._cache[piece]
        symbols = list(piece)
        while len(symbols) > 1:
            pair = min(zip(symbols, symbols[1:]), key=lambda p: self.ranks.get(p, float("inf")))
            if pair not in self.ranks:
                break
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
                    merged.append(pair[0] + pair[1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[piece] = symbols
        return symbols

    def tokenize(self, text):
        """Text -> byte-level tokens: "Hello world" -> ['Hello', 'Ġworld'] (with a vocabulary that has them)."""
        _check_text(text, "text")
        chunks = self._special_re.split(text) if self._special_re else [text]
        tokens = []
        for i, chunk in enumerate(chunks):
            if i % 2:
                tokens.append(chunk)
                continue
            for piece in pretokenize(chunk):
                tokens.extend(self.bpe("".join(self.byte_encoder[b] for b in _utf8(piece))))
        return tokens

    def convert_tokens_to_ids(self, tokens):
        if isinstance(tokens, str):
            return self.vocab[tokens]
        return [self.vocab[t] for t in tokens]

    def convert_ids_to_tokens(self, ids):
        if isinstance(ids, int) or getattr(ids, "ndim", 1) == 0:
            return self.ids_to_tokens[int(ids)]
        return [self.ids_to_tokens[int(i)] for i in ids]

    def encode(self, text):
        """Text -> ids (no special tokens are added: GPT-2 adds none)."""
        return self.convert_tokens_to_ids(self.tokenize(text))

    def decode(self, ids, skip_special_tokens=False):
        """Ids -> text; ``decode(encode(s)) == s`` for every str s."""
        out, data = [], bytearray()
        for i in ids:
            i = int(i)
            if i not in self.ids_to_tokens:
                raise ValueError(f"id {i} is outside the vocabulary (size {self.vocab_size})")
            token = self.ids_to_tokens[i]
            if token in self.special_tokens:
                out.append(_from_utf8(bytes(data)))
                data.clear()
                if not skip_special_tokens:
                    out.append(token)
            else:
                data.extend(self.byte_decoder[c] for c in token)
        out.append(_from_utf8(bytes(data)))
        return "".join(out)

    def __call__(self, text, padding=False, truncation=None, max_length=None, return_tensors=None):
        """A str or a list of str -> BatchEncoding of ``input_ids`` and ``attention_mask`` (HF's rules for
        padding/truncation; padding needs ``pad_token``)."""
        batched = isinstance(text, (list, tuple))
        texts = list(text) if batched else [text]
        for t in texts:
            _check_text(t, "text")
        pad, trunc, max_length = resolve_strategies(padding, truncation, max_length, self.model_max_length)
        if pad is not None and self.pad_token is None:
            raise ValueError("padding needs a pad token: ByteLevelBPETokenizer(..., pad_token='<|endoftext|>')")
        rows = []
        for t in texts:
            ids = self.encode(t)
            if trunc is not None and max_length is not None and len(ids) > max_length:
                ids, _ = truncate_pair(ids, None, len(ids) - max_length, trunc)
            rows.append({"input_ids": ids})
        rows = pad_batch(rows, pad, max_length, {"input_ids": self.pad_token_id})
        return to_batch_encoding(rows, batched, return_tensors)

    def __repr__(self):
        return f"ByteLevelBPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)})"


def train_bpe(corpus, vocab_size=4000, min_frequency=2, special_tokens=("<|endoftext|>",), **tokenizer_kwargs):
    """Trains a byte-level BPE on ``corpus`` (an iterable of str); returns its ByteLevelBPETokenizer.

    The vocabulary is ``special_tokens`` (ids 0, 1, ...), then the 256 byte symbols in byte order, then one
    token per merge; merges take the most frequent adjacent pair (merges.py, score="count"), never crossing
    a pre-token boundary, until ``vocab_size`` tokens; a pair seen fewer than ``min_frequency`` times is never
    merged. Save with ``.save_pretrained(dir)`` (vocab.json + merges.txt).
    """
    if isinstance(corpus, str):
        raise TypeError("corpus must be an iterable of str (e.g. a list of lines), not a single str")
    byte_encoder = bytes_to_unicode()
    piece_counts = Counter()
    for text in corpus:
        _check_text(text, "every corpus item")
        piece_counts.update(pretokenize(text))
    word_counts = Counter()
    for piece, n in piece_counts.items():
        word_counts[tuple(byte_encoder[b] for b in _utf8(piece))] += n

    tokens = list(special_tokens) + [byte_encoder[b] for b in range(256)]
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"special_tokens {list(special_tokens)} repeat or collide with a byte symbol")
    merges = learn_merges(word_counts, vocab_size - len(tokens), lambda a, b: a + b, min_frequency, score="count")
    seen = set(tokens)
    for a, b in merges:
        if a + b not in seen:
            seen.add(a + b)
            tokens.append(a + b)
    return ByteLevelBPETokenizer({t: i for i, t in enumerate(tokens)}, merges, special_tokens=special_tokens,
                                 **tokenizer_kwargs)
