"""Corpora for pretraining: BERT's text format and a built-in offline corpus.

BERT's format (google-research/bert, ``create_pretraining_data.py``): one sentence per line, a blank line
between documents. Sentence boundaries matter because next-sentence prediction (NSP) pairs real neighbours;
document boundaries matter because NSP must never pair sentences across documents.

A corpus in memory is ``list[list[str]]``: documents, each a list of sentences.

The built-in corpus is the English reference text that ships with every Python install
(``pydoc_data.topics.topics``, the pages ``help("for")`` prints): each topic is one document, split into
sentences by :func:`split_sentences` after dropping code, grammar and tables (:func:`prose_paragraphs`).
"""
import io
import os
import re



# --- BERT's text format -------------------------------------------------------------------------------

def read_corpus(path: str) -> list[list[str]]:
    """Read a BERT-format file: one sentence per line, blank line(s) between documents.

    Leading/trailing whitespace is stripped; empty documents are dropped (as in the original).
    """
    if os.path.isdir(path):
        raise IsADirectoryError(f"corpus '{path}' is a directory, expected a text file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"corpus file '{path}' does not exist")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"corpus file '{path}' is not UTF-8 text: byte 0x{raw[error.start]:02x} at offset "
                         f"{error.start} cannot be decoded ({error.reason})") from None
    documents: list[list[str]] = [[]]
    for line in io.StringIO(text, newline=None):  # universal newlines, as open() in text mode reads
        line = line.strip()
        if not line:
            documents.append([])
        else:
            documents[-1].append(line)
    return [doc for doc in documents if doc]


def write_corpus(documents: list[list[str]], path: str) -> None:
    """Write documents in BERT's format (one sentence per line, one blank line between documents).

    Newlines inside a sentence would break the format, so they are replaced by spaces.
    """
    with open(path, "w", encoding="utf-8") as f:
        for k, doc in enumerate(documents):
            if k:
                f.write("\n")
            for sentence in doc:
                f.write(" ".join(sentence.split()) + "\n")


# --- sentence splitting ---------------------------------------------------------------------------------

# Abbreviations whose final period does not end a sentence ("e.g. the list" must stay one sentence).
ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "cf.", "vs.", "viz.", "approx.", "Mr.", "Mrs.", "Dr.", "No.", "Fig.")

# A candidate boundary: terminal punctuation, optional closing quote/bracket, whitespace, then a sentence
# start (capital letter, digit, opening quote or bracket, or '*' for emphasised words).
_BOUNDARY = re.compile(r"""(?:(?<=[.!?])|(?<=[.!?]["')\]]))\s+(?=["'(\[*]?[A-Z0-9])""")


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences with a simple, predictable rule.

    Rule: whitespace is collapsed; a sentence ends at '.', '!' or '?' (plus an optional closing quote or
    bracket) followed by whitespace and a capital letter, digit or opening quote. Boundaries right after
    an abbreviation in :data:`ABBREVIATIONS` (e.g., i.e., etc., ...) are not boundaries. Periods inside
    tokens ("3.11", "os.path") never match because no whitespace follows them.
    """
    text = " ".join(text.split())
    if not text:
        return []
    sentences, start = [], 0
    for m in _BOUNDARY.finditer(text):
        candidate = text[start:m.start()].rstrip("\"')]")
        if candidate.endswith(ABBREVIATIONS):
            continue
        sentences.append(text[start:m.start()].strip())
        start = m.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


# --- junk filters -----------------------------------------------------------------------------------------

def is_prose_sentence(sentence: str, min_words: int = 4) -> bool:
    """True for a sentence worth training on: at least ``min_words`` words, mostly letters, ends like prose.

    Rejects headings and labels ("Note:"), code ("x = f(y)"), tables ("+----+") and symbol lines: at
    least 70% of the non-space characters must be letters, and the sentence must end with . ! ? or :.
    """
    words = sentence.split()
    if len(words) < min_words:
        return False
    chars = sentence.replace(" ", "")
    letters = sum(c.isalpha() for c in chars)
    if letters < 0.7 * len(chars):
        return False
    if ">>>" in sentence or "::=" in sentence:
        return False
    return sentence.rstrip("\"')]").endswith((".", "!", "?", ":"))


_UNDERLINE = re.compile(r"^\s*([*=\-~^#+|])\1{2,}\s*$")  # "*****", "=====", "-----": heading underlines
_TABLE = re.compile(r"^\s*[+|]")                           # "+-----+-----+" and "| cell | cell |"
_BULLET = re.compile(r"^(\*|-|\d+\.|\(\d+\))\s+")          # "* item", "1. item", "(1) item"
# reST admonition labels: the indented block after them is prose, not code.
_LABEL = re.compile(r"^(Note|Notes|See also|Warning|Attention|Caution|Important|Hint|Tip):$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def prose_paragraphs(text: str) -> list[str]:
    """The prose paragraphs of one pydoc topic, each as one line of text.

    pydoc's plain-text rendering of reStructuredText: paragraphs are separated by blank lines; a heading
    is a line underlined by ``****``/``====``/``----``; a literal (code) block is indented deeper than the
    paragraph before it when that paragraph ends with ':' (reST's ``::``), unless that paragraph is an
    admonition label such as "Note:" or "See also:"; interactive sessions start with ``>>>``; grammar rules
    contain ``::=``; tables start with '+' or '|'. All of those are dropped; bullets lose their marker.
    """
    blocks, current = [], []
    for line in io.StringIO(text, newline=None):  # universal newlines, as open() in text mode reads
        if line.strip():
            current.append(line.rstrip())
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)

    paragraphs = []
    code_indent = None       # inside a literal block: blocks indented at least this much are code
    prev_text, prev_indent = "", 0
    for block in blocks:
        indent = _indent(block[0])
        if code_indent is not None and indent >= code_indent:
            continue
        code_indent = None
        if prev_text.endswith(":") and indent > prev_indent and not _LABEL.match(prev_text):
            code_indent = indent  # a literal block introduced by the previous paragraph
            continue
        lines = [ln for ln in block if not _UNDERLINE.match(ln) and not _TABLE.match(ln)]
        if not lines or any(ln.lstrip().startswith(">>>") or "::=" in ln for ln in lines):
            prev_text, prev_indent = "", indent
            continue
        joined = _BULLET.sub("", " ".join(ln.strip() for ln in lines))
        paragraphs.append(joined)
        prev_text, prev_indent = joined, indent
    return paragraphs


def topic_to_sentences(text: str, min_words: int = 4) -> list[str]:
    """Prose sentences of one pydoc topic: :func:`prose_paragraphs` -> :func:`split_sentences` -> filter."""
    return [s for p in prose_paragraphs(text) for s in split_sentences(p)
            if is_prose_sentence(s, min_words)]


def builtin_corpus(min_sentences: int = 2, min_words: int = 4) -> list[list[str]]:
    """Real English text that ships with Python: one document per ``pydoc_data.topics`` topic.

    Topics are taken in sorted key order (deterministic across runs); documents with fewer than
    ``min_sentences`` sentences are dropped (NSP needs at least two sentences to pair).
    """
    from pydoc_data.topics import topics

    documents = [topic_to_sentences(topics[key], min_words) for key in sorted(topics)]
    return [doc for doc in documents if len(doc) >= min_sentences]


def corpus_stats(documents: list[list[str]]) -> dict:
    """Size of a corpus: documents, sentences, whitespace words and UTF-8 megabytes of text."""
    sentences = [s for doc in documents for s in doc]
    return {
        "documents": len(documents),
        "sentences": len(sentences),
        "words": sum(len(s.split()) for s in sentences),
        "megabytes": sum(len(s.encode("utf-8")) + 1 for s in sentences) / 1e6,
    }
