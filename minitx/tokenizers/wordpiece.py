"""WordPiece: BERT's subword tokenizer (Wu et al. 2016, "Google's Neural Machine Translation System", §4.1;
Devlin et al. 2019, "BERT", §3), and training a WordPiece vocabulary from a corpus.

Encoding a text:  BasicTokenizer (words and punctuation, see basic.py), then each word is cut greedily,
longest match first, into vocabulary pieces; pieces after the first carry the "##" prefix:

    "unaffable" -> ["un", "##aff", "##able"]

A word with a piece missing from the vocabulary, or longer than ``max_input_chars_per_word`` (100), becomes
``[UNK]`` as a whole. Model inputs are ``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]`` with ``token_type_ids``
0 for the first segment and 1 for the second.

Ids, truncation, padding and decoding match HF ``transformers``' Python BertTokenizer
(``BertTokenizerLegacy`` in transformers 5) and google-research/bert ``tokenization.py``.
"""
import json
import os
import re
from collections import Counter

from minitx.tokenizers.basic import BasicTokenizer
from minitx.tokenizers.encoding import pad_batch, resolve_strategies, to_batch_encoding, truncate_pair
from minitx.tokenizers.merges import learn_merges

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_CONFIG_KEYS = ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "never_split", "unk_token",
                "sep_token", "pad_token", "cls_token", "mask_token", "model_max_length",
                "clean_up_tokenization_spaces")


def load_vocab(path):
    """vocab.txt (one token per line, the line number is its id) -> {token: id}."""
    with open(path, encoding="utf-8") as f:
        return {line.rstrip("\n"): i for i, line in enumerate(f)}


def wordpiece_split(word, vocab, unk_token="[UNK]", max_input_chars_per_word=100):
    """Greedy longest-match-first split of one word: "unaffable" -> ["un", "##aff", "##able"]."""
    if len(word) > max_input_chars_per_word:
        return [unk_token]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        else:  # no prefix of the rest is in the vocabulary
            return [unk_token]
        pieces.append(piece)
        start = end
    return pieces


def clean_up_tokenization(text):
    """HF's decode clean-up: remove the space a detokenized text has before . ? ! , and English contractions."""
    for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                          (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(before, after)
    return text


def _check_text(value, name):
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str or a list of str, got {type(value).__name__}: {value!r:.60}")


class WordPieceTokenizer:
    """BERT's tokenizer: ``tok(text, text_pair, padding=..., truncation=..., max_length=...)`` gives
    ``input_ids``, ``token_type_ids`` and ``attention_mask`` exactly as HF's BertTokenizer does.

    >>> tok = WordPieceTokenizer.from_pretrained("path/to/all-MiniLM-L6-v2")
    >>> tok("Hello world!")
    {'input_ids': [101, 7592, 2088, 999, 102], 'token_type_ids': [0, 0, 0, 0, 0], 'attention_mask': [1, 1, 1, 1, 1]}
    """

    def __init__(self, vocab, do_lower_case=True, strip_accents=None, tokenize_chinese_chars=True,
                 never_split=None, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
                 mask_token="[MASK]", model_max_length=512, max_input_chars_per_word=100,
                 clean_up_tokenization_spaces=True):
        self.vocab = dict(vocab)                                  # token -> id
        self.ids_to_tokens = {i: t for t, i in self.vocab.items()}
        for name, token in (("unk_token", unk_token), ("sep_token", sep_token), ("pad_token", pad_token),
                            ("cls_token", cls_token), ("mask_token", mask_token)):
            if token not in self.vocab:
                raise ValueError(f"{name} {token!r} is not in the vocabulary ({len(self.vocab)} tokens)")
        self.unk_token, self.sep_token, self.pad_token = unk_token, sep_token, pad_token
        self.cls_token, self.mask_token = cls_token, mask_token
        self.do_lower_case, self.strip_accents = do_lower_case, strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.never_split = list(never_split or ())
        self.model_max_length = model_max_length
        self.max_input_chars_per_word = max_input_chars_per_word
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
        self.basic_tokenizer = BasicTokenizer(do_lower_case, self.never_split, tokenize_chinese_chars,
                                              strip_accents)
        # Special tokens typed in the text stay whole ("a [MASK] b"); longest first so the regex prefers it.
        specials = sorted(set(self.all_special_tokens), key=len, reverse=True)
        self._special_re = re.compile("(" + "|".join(map(re.escape, specials)) + ")")
        self._word_cache = {}

    # ---- loading and saving -------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, directory, **overrides):
        """Loads ``vocab.txt`` and, if present, the options of ``tokenizer_config.json`` (HF layout)."""
        vocab_path = os.path.join(directory, "vocab.txt")
        if not os.path.isfile(vocab_path):
            raise FileNotFoundError(f"no WordPiece vocabulary: '{vocab_path}' does not exist")
        kwargs = {}
        config_path = os.path.join(directory, "tokenizer_config.json")
        if os.path.isfile(config_path):
            with open(config_path, encoding="utf-8") as f:
                config = json.load(f)
            kwargs = {k: config[k] for k in _CONFIG_KEYS if config.get(k) is not None or k == "strip_accents"}
            kwargs = {k: (v["content"] if isinstance(v, dict) else v) for k, v in kwargs.items()}
            if kwargs.get("model_max_length", 0) > 1e12:  # HF writes a huge int for "no limit"
                kwargs["model_max_length"] = None
        kwargs.update(overrides)
        return cls(load_vocab(vocab_path), **kwargs)

    def save_pretrained(self, directory):
        """Writes ``vocab.txt`` and ``tokenizer_config.json``, loadable by us and by HF's BertTokenizer."""
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
            for token, _ in sorted(self.vocab.items(), key=lambda kv: kv[1]):
                f.write(token + "\n")
        config = {k: getattr(self, k) for k in _CONFIG_KEYS}
        config["tokenizer_class"] = "BertTokenizer"
        with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2, ensure_ascii=False)
        return directory

    # ---- vocabulary -------------------------------------------------------------------------------
    @property
    def vocab_size(self):
        return len(self.vocab)

    def __len__(self):
        return len(self.vocab)

    @property
    def all_special_tokens(self):
        return [self.unk_token, self.sep_token, self.pad_token, self.cls_token, self.mask_token]

    @property
    def all_special_ids(self):
        return [self.vocab[t] for t in self.all_special_tokens]

    unk_token_id = property(lambda self: self.vocab[self.unk_token])
    sep_token_id = property(lambda self: self.vocab[self.sep_token])
    pad_token_id = property(lambda self: self.vocab[self.pad_token])
    cls_token_id = property(lambda self: self.vocab[self.cls_token])
    mask_token_id = property(lambda self: self.vocab[self.mask_token])

    def convert_tokens_to_ids(self, tokens):
        """A token or a list of tokens -> id(s); unknown tokens give ``unk_token_id``."""
        if isinstance(tokens, str):
            return self.vocab.get(tokens, self.unk_token_id)
        return [self.vocab.get(t, self.unk_token_id) for t in tokens]

    def convert_ids_to_tokens(self, ids, skip_special_tokens=False):
        """An id or a list of ids -> token(s); ids outside the vocabulary give ``unk_token``."""
        if isinstance(ids, int) or getattr(ids, "ndim", 1) == 0:
            return self.ids_to_tokens.get(int(ids), self.unk_token)
        special = set(self.all_special_ids) if skip_special_tokens else ()
        return [self.ids_to_tokens.get(int(i), self.unk_token) for i in ids if int(i) not in special]

    # ---- text -> tokens -> ids ------------------------------------------------------------------------
    def tokenize(self, text):
        """Text -> WordPiece tokens: "Unaffable!" -> ['un', '##aff', '##able', '!']."""
        _check_text(text, "text")
        tokens = []
        for i, chunk in enumerate(self._special_re.split(text)):
            if i % 2:  # the regex's captured group: a special token typed in the text
                tokens.append(chunk)
                continue
            for word in self.basic_tokenizer.tokenize(chunk, never_split=self.all_special_tokens):
                tokens.extend([word] if word in self.basic_tokenizer.never_split else self._wordpiece(word))
        return tokens

    def _wordpiece(self, word):
        pieces = self._word_cache.get(word)
        if pieces is None:
            pieces = wordpiece_split(word, self.vocab, self.unk_token, self.max_input_chars_per_word)
            if len(self._word_cache) > 100_000:
                self._word_cache.clear()
            self._word_cache[word] = pieces
        return pieces

    def encode(self, text, text_pair=None, add_special_tokens=True, truncation=None, max_length=None,
               padding=False):
        """Text (and optional pair) -> the list of input ids, e.g. [CLS] ... [SEP]."""
        return self(text, text_pair, add_special_tokens=add_special_tokens, truncation=truncation,
                    max_length=max_length, padding=padding)["input_ids"]

    def __call__(self, text, text_pair=None, add_special_tokens=True, padding=False, truncation=None,
                 max_length=None, return_tensors=None):
        """A str (or list of str for a batch), with an optional pair -> BatchEncoding of
        ``input_ids``, ``token_type_ids``, ``attention_mask`` (lists, or int64 arrays with return_tensors="np")."""
        batched = isinstance(text, (list, tuple))
        texts = list(text) if batched else [text]
        if text_pair is None:
            pairs = [None] * len(texts)
        elif batched:
            if not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(texts):
                raise ValueError("when text is a batch (list), text_pair must be a list of the same length")
            pairs = list(text_pair)
        else:
            pairs = [text_pair]
        for t in texts:
            _check_text(t, "text")
        for p in pairs:
            if p is not None:
                _check_text(p, "text_pair")
        pad, trunc, max_length = resolve_strategies(padding, truncation, max_length, self.model_max_length)
        rows = [self._encode_one(t, p, add_special_tokens, trunc, max_length) for t, p in zip(texts, pairs)]
        rows = pad_batch(rows, pad, max_length, {"input_ids": self.pad_token_id, "token_type_ids": 0})
        return to_batch_encoding(rows, batched, return_tensors)

    def _encode_one(self, text, pair, add_special_tokens, truncation, max_length):
        ids = self.convert_tokens_to_ids(self.tokenize(text))
        pair_ids = None if pair is None else self.convert_tokens_to_ids(self.tokenize(pair))
        num_special = (2 if pair_ids is None else 3) if add_special_tokens else 0
        total = len(ids) + len(pair_ids or ()) + num_special
        if truncation is not None and max_length is not None and total > max_length:
            ids, pair_ids = truncate_pair(ids, pair_ids, total - max_length, truncation)
        if not add_special_tokens:
            input_ids = ids + (pair_ids or [])
            return {"input_ids": input_ids, "token_type_ids": [0] * len(input_ids)}
        input_ids = [self.cls_token_id] + ids + [self.sep_token_id]
        token_type_ids = [0] * len(input_ids)
        if pair_ids is not None:
            input_ids += pair_ids + [self.sep_token_id]
            token_type_ids += [1] * (len(pair_ids) + 1)
        return {"input_ids": input_ids, "token_type_ids": token_type_ids}

    # ---- ids -> text --------------------------------------------------------------------------------
    def convert_tokens_to_string(self, tokens):
        """['un', '##aff', '##able'] -> 'unaffable' (pieces glued, words joined by spaces)."""
        return " ".join(tokens).replace(" ##", "").strip()

    def decode(self, ids, skip_special_tokens=False, clean_up_tokenization_spaces=None):
        """Ids -> text, as HF: lower-cased words joined by spaces, '##' pieces glued, then the clean-up."""
        text = self.convert_tokens_to_string(self.convert_ids_to_tokens(list(ids), skip_special_tokens))
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None \
            else clean_up_tokenization_spaces
        return clean_up_tokenization(text) if clean else text

    def __repr__(self):
        return (f"WordPieceTokenizer(vocab_size={self.vocab_size}, do_lower_case={self.do_lower_case}, "
                f"strip_accents={self.strip_accents}, model_max_length={self.model_max_length})")


def train_wordpiece(corpus, vocab_size=3000, min_frequency=2, special_tokens=SPECIAL_TOKENS,
                    do_lower_case=True, strip_accents=None, tokenize_chinese_chars=True,
                    max_input_chars_per_word=100, score="likelihood", **tokenizer_kwargs):
    """Trains a WordPiece vocabulary on ``corpus`` (an iterable of str) and returns its WordPieceTokenizer.

    1. Pre-split every text with BasicTokenizer (same options as the tokenizer) and count the words.
    2. Spell each word as characters, every non-initial one with the "##" prefix: "low" -> l ##o ##w.
       The vocabulary starts as ``special_tokens`` (ids 0, 1, ...) + every such symbol (sorted).
    3. Merge pairs with the WordPiece likelihood score count(ab) / (count(a)·count(b)) (merges.py; the
       scoring of Schuster & Nakajima 2012 as taught in the HF course) until ``vocab_size`` tokens;
       a pair seen fewer than ``min_frequency`` times is never merged. ("l", "##o") -> "lo",
       ("##o", "##w") -> "##ow". ``score="count"`` merges the most frequent pair instead, like BPE and like
       HF ``tokenizers``' WordPieceTrainer: with a small vocabulary it keeps frequent words whole, where the
       likelihood score spends its merges on rare fragments and spells common words letter by letter.
    The vocabulary is the tokens, not the merges: encoding is the greedy longest match of wordpiece_split.
    Save it with ``.save_pretrained(dir)`` (writes vocab.txt).
    """
    if isinstance(corpus, str):
        raise TypeError("corpus must be an iterable of str (e.g. a list of lines), not a single str")
    if len(set(special_tokens)) != len(special_tokens):
        raise ValueError(f"special_tokens has duplicates: {list(special_tokens)}")
    basic = BasicTokenizer(do_lower_case, None, tokenize_chinese_chars, strip_accents)
    word_counts = Counter()
    for text in corpus:
        _check_text(text, "every corpus item")
        word_counts.update(basic.tokenize(text))
    spelled = Counter()
    for word, n in word_counts.items():
        if len(word) <= max_input_chars_per_word and word not in special_tokens:
            spelled[tuple([word[0]] + ["##" + c for c in word[1:]])] += n

    alphabet = sorted({s for w in spelled for s in w} - set(special_tokens))
    tokens = list(special_tokens) + alphabet
    if score not in ("likelihood", "count"):
        raise ValueError(f"train_wordpiece: score must be 'likelihood' or 'count', got {score!r}")
    merges = learn_merges(spelled, vocab_size - len(tokens), lambda a, b: a + b[2:], min_frequency, score=score)
    seen = set(tokens)
    for a, b in merges:
        new = a + b[2:]
        if new not in seen:
            seen.add(new)
            tokens.append(new)

    names = dict(zip(("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"), SPECIAL_TOKENS))
    if tuple(special_tokens[:5]) != SPECIAL_TOKENS:  # custom specials: the caller names them
        names = {}
    return WordPieceTokenizer({t: i for i, t in enumerate(tokens)}, do_lower_case=do_lower_case,
                              strip_accents=strip_accents, tokenize_chinese_chars=tokenize_chinese_chars,
                              max_input_chars_per_word=max_input_chars_per_word, **{**names, **tokenizer_kwargs})
