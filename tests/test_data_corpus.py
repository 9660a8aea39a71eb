"""Corpora: BERT's one-sentence-per-line format, the sentence splitter, the built-in pydoc corpus."""
import pytest

from minitx.data.corpus import (builtin_corpus, corpus_stats, is_prose_sentence, prose_paragraphs, read_corpus,
                                split_sentences, topic_to_sentences, write_corpus)

pytestmark = pytest.mark.data


def test_split_sentences_basic_and_whitespace():
    text = "The loop ends.  Then\n the   else clause runs!  Does it?\tYes."
    assert split_sentences(text) == ["The loop ends.", "Then the else clause runs!", "Does it?", "Yes."]


def test_split_sentences_keeps_abbreviations_numbers_and_dotted_names():
    text = ('Use a container, e.g. A list or i.e. The tuple. Python 3.11 added it. '
            'Call "os.path.join()" first. See PEP 8 etc. For more.')
    assert split_sentences(text) == [
        "Use a container, e.g. A list or i.e. The tuple.",
        "Python 3.11 added it.",
        'Call "os.path.join()" first.',
        "See PEP 8 etc. For more.",
    ]


def test_split_sentences_closing_quote_and_lowercase_continuation():
    # A boundary needs an upper-case/digit/quote start: "x. y" is not split; a closing quote stays attached.
    assert split_sentences('He wrote "stop." Then left. the end') == ['He wrote "stop."', "Then left. the end"]
    assert split_sentences("   ") == []


@pytest.mark.parametrize("line, keep", [
    ("The suite is executed once for each item.", True),
    ("Note:", False),                                   # a label
    ("Changed in 3.11.", False),                        # too few words
    ("x = f(y) + g[z] * 2 ** k;", False),               # code: mostly symbols
    ("+-----------+-----------+----------+", False),    # table rule
    (">>> print(the value of x)", False),               # interactive session
    ("The loop ends and then the else clause", False),  # no terminal punctuation
])
def test_is_prose_sentence(line, keep):
    assert is_prose_sentence(line) is keep


def test_prose_paragraphs_drops_code_grammar_tables_and_headings():
    topic = (
        "The \"for\" statement\n"
        "*******************\n"
        "\n"
        "The statement iterates over a sequence\n"
        "of items:\n"
        "\n"
        "   for_stmt ::= \"for\" target_list \"in\" expression_list \":\" suite\n"
        "\n"
        "An example follows:\n"
        "\n"
        "   for i in range(10):\n"
        "       print(i)\n"
        "\n"
        "   i = 5\n"
        "\n"
        "* A bulleted item explains something.\n"
        "\n"
        "+-----+-----+\n"
        "| a   | b   |\n"
        "+-----+-----+\n"
        "\n"
        ">>> x = 1\n"
        ">>> x\n"
        "1\n"
        "\n"
        "Note:\n"
        "\n"
        "  Indented prose after a label is kept.\n"
    )
    assert prose_paragraphs(topic) == [
        'The "for" statement',
        "The statement iterates over a sequence of items:",
        "An example follows:",
        "A bulleted item explains something.",
        "Note:",
        "Indented prose after a label is kept.",
    ]
    assert topic_to_sentences(topic) == [
        "The statement iterates over a sequence of items:",   # "An example follows:" has < 4 words
        "A bulleted item explains something.",
        "Indented prose after a label is kept.",
    ]


def test_write_then_read_round_trip(tmp_path):
    docs = [["First sentence of doc one.", "Second  sentence\nwith a newline."], ["Only sentence of doc two."]]
    path = tmp_path / "corpus.txt"
    write_corpus(docs, str(path))
    assert path.read_text(encoding="utf-8") == (
        "First sentence of doc one.\nSecond sentence with a newline.\n\nOnly sentence of doc two.\n")
    assert read_corpus(str(path)) == [["First sentence of doc one.", "Second sentence with a newline."],
                                      ["Only sentence of doc two."]]


def test_read_corpus_skips_extra_blank_lines_and_strips(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("\n\n  a b c  \nd e f\n\n\n\ng h\n\n", encoding="utf-8")
    assert read_corpus(str(path)) == [["a b c", "d e f"], ["g h"]]
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_corpus(str(tmp_path / "missing.txt"))


def test_builtin_corpus_is_clean_deterministic_prose():
    docs = builtin_corpus()
    assert docs == builtin_corpus()
    stats = corpus_stats(docs)
    assert stats["documents"] >= 50 and stats["sentences"] >= 2000 and stats["words"] >= 30000
    for doc in docs:
        assert len(doc) >= 2
        for s in doc:
            assert is_prose_sentence(s), s
            assert "\n" not in s and ">>>" not in s and "::=" not in s
