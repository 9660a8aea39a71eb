"""BERT's BasicTokenizer: the rule-based split of raw text into words, before WordPiece.

Faithful to google-research/bert ``tokenization.py::BasicTokenizer`` and to HF's Python ("slow")
``BertTokenizer`` (``transformers/models/bert/tokenization_bert_legacy.py``), step by step:

1. clean:      drop U+0000, U+FFFD and control characters (category C*, but \\t \\n \\r count as spaces);
               every whitespace character (category Zs, or \\t \\n \\r) becomes " ".
2. CJK:        put spaces around every CJK ideograph, so each becomes its own word (BERT multilingual README).
3. NFC:        Unicode-compose the text (HF's addition: "é" typed as e + U+0301 and as U+00E9 become one).
4. per word:   lower-case, then strip accents (NFD decompose, drop the combining marks, category Mn).
               ``strip_accents=None`` follows ``do_lower_case`` (as in the original BERT).
5. punctuation: split every punctuation character off as its own word. "Punctuation" is Unicode P*
               plus every ASCII character that is neither a letter nor a digit ($ + < = > ^ ` | ~ ...).

Words in ``never_split`` (e.g. "[CLS]") skip steps 4-5.
"""
import unicodedata


def is_whitespace(char):
    """True for space, \\t, \\n, \\r and Unicode space separators (category Zs)."""
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def is_control(char):
    """True for control/format/unassigned/private/surrogate characters (category C*), except \\t \\n \\r."""
    return char not in "\t\n\r" and unicodedata.category(char).startswith("C")


def is_punctuation(char):
    """True for Unicode punctuation (P*) and for every ASCII non-letter, non-digit printable character."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


# The CJK Unified Ideographs blocks BERT splits into single characters (Hangul, Hiragana and Katakana are
# NOT in them: those scripts separate words with spaces).
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)


def is_chinese_char(char):
    """True for a code point in one of BERT's CJK ideograph blocks."""
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def strip_accents(text):
    """'Crème Brûlée' -> 'Creme Brulee': NFD decomposition, then drop combining marks (category Mn)."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


class BasicTokenizer:
    """Splits text into words and punctuation (steps in the module docstring).

    >>> BasicTokenizer().tokenize("Héllo, WORLD!  中文")
    ['hello', ',', 'world', '!', '中', '文']
    """

    def __init__(self, do_lower_case=True, never_split=None, tokenize_chinese_chars=True, strip_accents=None):
        self.do_lower_case = do_lower_case
        self.never_split = set(never_split or ())
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents
        self._char_class = {}  # char -> "drop" | "space" | "cjk" | "punct" | "other", memoised (text is repetitive)

    def tokenize(self, text, never_split=None):
        """Returns the list of words of ``text``; ``never_split`` adds protected words for this call."""
        never_split = self.never_split.union(never_split) if never_split else self.never_split
        text = unicodedata.normalize("NFC", self._clean_and_space_cjk(text))
        words = []
        for word in text.split():  # str.split(): also splits on U+2028/U+2029, which step 1 keeps
            if word in never_split:
                words.append(word)
                continue
            if self.do_lower_case:
                word = word.lower()
            if self.strip_accents or (self.strip_accents is None and self.do_lower_case):
                word = strip_accents(word)
            words.extend([word] if word in never_split else self._split_on_punctuation(word))
        return words

    def _classify(self, char):
        cls = self._char_class.get(char)
        if cls is None:
            if char in "\x00\ufffd" or is_control(char):
                cls = "drop"
            elif is_whitespace(char):
                cls = "space"
            elif self.tokenize_chinese_chars and is_chinese_char(char):
                cls = "cjk"
            elif is_punctuation(char):
                cls = "punct"
            else:
                cls = "other"
            self._char_class[char] = cls
        return cls

    def _clean_and_space_cjk(self, text):
        """Steps 1-2: drop invalid/control chars, normalise whitespace to " ", surround CJK with spaces."""
        out = []
        for char in text:
            cls = self._classify(char)
            if cls == "drop":
                continue
            if cls == "space":
                out.append(" ")
            elif cls == "cjk":
                out.append(" " + char + " ")
            else:
                out.append(char)
        return "".join(out)

    def _split_on_punctuation(self, word):
        """Step 5: 'don't!' -> ['don', "'", 't', '!']."""
        pieces, current = [], []
        for char in word:
            # Lower-casing/accent stripping may have made new chars (e.g. 'İ'.lower() adds U+0307): test afresh.
            if is_punctuation(char):
                if current:
                    pieces.append("".join(current))
                    current = []
                pieces.append(char)
            else:
                current.append(char)
        if current:
            pieces.append("".join(current))
        return pieces
