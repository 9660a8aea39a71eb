"""BERT pretraining instances: masked-LM + next-sentence prediction (Devlin et al. 2019, §3.1 and App. A.2).

A faithful re-implementation of google-research/bert ``create_pretraining_data.py``:

1. Each sentence is tokenized; empty sentences and documents are dropped; documents are shuffled.
2. Each document is cut into chunks of whole sentences of about ``target_seq_length`` tokens
   (= max_seq_length - 3; with probability ``short_seq_prob`` a shorter target, drawn once per document,
   to reduce the pretrain/fine-tune length mismatch).
3. A chunk is split at a random sentence boundary into segment A and the actual next segment B, or
   (50%, and always when the chunk is a single sentence) B is a random span of another document and the
   unused sentences of the chunk are "put back" to start the next chunk.
4. The pair is truncated to max_seq_length - 3 tokens by removing tokens from a random end of the longer
   segment, then laid out as ``[CLS] A [SEP] B [SEP]``.
5. Masked LM: ``num_to_predict = min(max_predictions_per_seq, max(1, round(len(tokens) * masked_lm_prob)))``
   positions (never [CLS]/[SEP]/[PAD]) are chosen; each becomes [MASK] 80% of the time, a random vocabulary
   token 10%, and stays unchanged 10% (BERT §3.1). Whole-word masking treats a word and its ``##``
   continuation pieces as one candidate.

Two modes: :class:`StaticMaskingDataset` (the original: ``dupe_factor`` copies, each masked once, fixed
forever) and :class:`DynamicMaskingDataset` (RoBERTa-style: the pairs are fixed, the masks are redrawn every
epoch from ``(seed, epoch, index)``, so epoch e is reproducible).

Labels follow Hugging Face ``BertForPreTraining``: ``labels`` holds the original token id at predicted
positions and -100 elsewhere; ``next_sentence_label`` is 0 when B is the actual next segment, 1 when random.

Randomness comes only from ``random.Random`` objects seeded explicitly, with the calls made in the same
order as the original script.
"""
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

CLS, SEP, MASK, PAD, UNK = "[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]"
NEVER_MASKED = frozenset({CLS, SEP, PAD})
IGNORE_INDEX = -100  # labels at positions the MLM loss ignores (cross_entropy ignore_index)


@dataclass(frozen=True)
class PretrainingConfig:
    """The flags of ``create_pretraining_data.py`` (same names, same defaults except ``dupe_factor``=10)."""
    max_seq_length: int = 128
    short_seq_prob: float = 0.1
    masked_lm_prob: float = 0.15
    max_predictions_per_seq: int = 20
    dupe_factor: int = 10
    do_whole_word_mask: bool = False

    def __post_init__(self):
        if self.max_seq_length < 5:
            raise ValueError(f"max_seq_length must be >= 5 ([CLS] A [SEP] B [SEP]), got {self.max_seq_length}")
        if not 0.0 <= self.masked_lm_prob <= 1.0 or not 0.0 <= self.short_seq_prob <= 1.0:
            raise ValueError("masked_lm_prob and short_seq_prob must lie in [0, 1]")


@dataclass
class SegmentPair:
    """One NSP example before masking: segment A, segment B, and whether B is a random segment."""
    tokens_a: list
    tokens_b: list
    is_random_next: bool


# --- vocabulary -------------------------------------------------------------------------------------------

class Vocab:
    """Token <-> id lookup from a ``{token: id}`` dict or a list of tokens (position = id).

    Only needs the special tokens [CLS], [SEP], [MASK] (and [PAD] for padding, [UNK] for unknown tokens).
    """

    def __init__(self, vocab: Mapping | Sequence):
        if isinstance(vocab, Mapping):
            self.token_to_id = dict(vocab)
        else:
            self.token_to_id = {tok: i for i, tok in enumerate(vocab)}
        self.words = [tok for tok, _ in sorted(self.token_to_id.items(), key=lambda kv: kv[1])]
        missing = [t for t in (CLS, SEP, MASK) if t not in self.token_to_id]
        if missing:
            raise ValueError(f"vocabulary lacks the special token(s) {missing}")
        self.unk_id = self.token_to_id.get(UNK)
        self.pad_id = self.token_to_id.get(PAD, 0)

    def __len__(self) -> int:
        return len(self.words)

    def ids(self, tokens: list) -> np.ndarray:
        """Token strings -> int64 ids; unknown tokens map to [UNK] (an error if the vocab has none)."""
        out = np.empty(len(tokens), dtype=np.int64)
        for i, tok in enumerate(tokens):
            idx = self.token_to_id.get(tok, self.unk_id)
            if idx is None:
                raise KeyError(f"token {tok!r} is not in the vocabulary and the vocabulary has no {UNK}")
            out[i] = idx
        return out


# --- 1. documents -> token lists --------------------------------------------------------------------------

def tokenize_documents(documents: list, tokenize: Callable[[str], list]) -> list:
    """``[[sentence, ...], ...]`` -> ``[[tokens, ...], ...]``, dropping empty sentences and documents."""
    out = []
    for doc in documents:
        sentences = [toks for toks in (tokenize(s) for s in doc) if toks]
        if sentences:
            out.append(sentences)
    return out


# --- 2-4. segment pairs for next-sentence prediction ------------------------------------------------------

def truncate_seq_pair(tokens_a: list, tokens_b: list, max_num_tokens: int, rng: random.Random) -> None:
    """Truncate in place until len(a) + len(b) <= max_num_tokens: drop one token of the longer segment
    (B on a tie), from its front or its back with probability 1/2 each, to avoid a positional bias."""
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        trunc_tokens = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del trunc_tokens[0]
        else:
            trunc_tokens.pop()


def create_segment_pairs(all_documents: list, document_index: int, max_seq_length: int,
                         short_seq_prob: float, rng: random.Random) -> Iterator[SegmentPair]:
    """Yield the NSP pairs of one document (``create_instances_from_document`` without the masking).

    A generator, so a caller can mask each pair right after it is made and keep the original's order of
    random draws.
    """
    document = all_documents[document_index]
    max_num_tokens = max_seq_length - 3  # [CLS] A [SEP] B [SEP]

    # Usually fill the whole sequence; sometimes (short_seq_prob, once per document) aim shorter.
    target_seq_length = max_num_tokens
    if rng.random() < short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)

    current_chunk, current_length = [], 0
    i = 0
    while i < len(document):
        current_chunk.append(document[i])
        current_length += len(document[i])
        if i == len(document) - 1 or current_length >= target_seq_length:
            # a_end: how many sentences of the chunk go into segment A.
            a_end = 1
            if len(current_chunk) >= 2:
                a_end = rng.randint(1, len(current_chunk) - 1)
            tokens_a = [tok for sentence in current_chunk[:a_end] for tok in sentence]

            tokens_b = []
            if len(current_chunk) == 1 or rng.random() < 0.5:
                is_random_next = True
                target_b_length = target_seq_length - len(tokens_a)
                # Pick another document (10 tries: a one-document corpus falls back to itself).
                for _ in range(10):
                    random_document_index = rng.randint(0, len(all_documents) - 1)
                    if random_document_index != document_index:
                        break
                random_document = all_documents[random_document_index]
                random_start = rng.randint(0, len(random_document) - 1)
                for sentence in random_document[random_start:]:
                    tokens_b.extend(sentence)
                    if len(tokens_b) >= target_b_length:
                        break
                # The chunk's sentences after A were not used: put them back for the next chunk.
                i -= len(current_chunk) - a_end
            else:
                is_random_next = False
                tokens_b = [tok for sentence in current_chunk[a_end:] for tok in sentence]

            truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
            yield SegmentPair(tokens_a, tokens_b, is_random_next)
            current_chunk, current_length = [], 0
        i += 1


def pair_to_tokens(pair: SegmentPair) -> tuple[list, list]:
    """``[CLS] A [SEP] B [SEP]`` and its token_type_ids: 0 for [CLS], A and the first [SEP]; 1 for B and the
    last [SEP]."""
    tokens = [CLS, *pair.tokens_a, SEP, *pair.tokens_b, SEP]
    segment_ids = [0] * (len(pair.tokens_a) + 2) + [1] * (len(pair.tokens_b) + 1)
    return tokens, segment_ids


# --- 5. masked LM -----------------------------------------------------------------------------------------

def num_to_predict(num_tokens: int, masked_lm_prob: float, max_predictions_per_seq: int) -> int:
    """How many positions to mask: 15% of the sequence (incl. specials), at least 1, at most the cap."""
    return min(max_predictions_per_seq, max(1, int(round(num_tokens * masked_lm_prob))))


def mask_candidates(tokens: list, do_whole_word_mask: bool) -> list:
    """Groups of positions that are masked together: one per token, or with whole-word masking one per
    word (a piece and the ``##`` pieces that follow it). [CLS]/[SEP]/[PAD] are never candidates."""
    cand_indexes = []
    for i, token in enumerate(tokens):
        if token in NEVER_MASKED:
            continue
        if do_whole_word_mask and cand_indexes and token.startswith("##"):
            cand_indexes[-1].append(i)
        else:
            cand_indexes.append([i])
    return cand_indexes


def create_masked_lm_predictions(tokens: list, masked_lm_prob: float, max_predictions_per_seq: int,
                                 vocab_words: list, rng: random.Random,
                                 do_whole_word_mask: bool = False) -> tuple[list, list, list]:
    """Choose and corrupt the MLM positions. Returns (output_tokens, positions (sorted), original tokens).

    BERT §3.1: of the chosen positions 80% become [MASK], 10% a random token drawn uniformly from the whole
    vocabulary (as the original does), 10% keep the original token; all of them are predicted.
    A whole word that would overshoot ``num_to_predict`` is skipped, so WWM may predict fewer.
    """
    cand_indexes = mask_candidates(tokens, do_whole_word_mask)
    rng.shuffle(cand_indexes)
    output_tokens = list(tokens)
    n_predict = num_to_predict(len(tokens), masked_lm_prob, max_predictions_per_seq)

    masked = []  # (position, original token)
    for index_set in cand_indexes:
        if len(masked) >= n_predict:
            break
        if len(masked) + len(index_set) > n_predict:
            continue
        for index in index_set:
            # BEGIN SOLUTION hint="BERT §3.1, 80/10/10: if rng.random() < 0.8 use [MASK]; elif rng.random() < 0.5 keep tokens[index]; else vocab_words[rng.randint(0, len(vocab_words) - 1)]. Write it into output_tokens[index] and append (index, tokens[index]) to masked"
            if rng.random() < 0.8:
                masked_token = MASK
            elif rng.random() < 0.5:
                masked_token = tokens[index]
            else:
                masked_token = vocab_words[rng.randint(0, len(vocab_words) - 1)]
            output_tokens[index] = masked_token
            masked.append((index, tokens[index]))
            # END SOLUTION
    masked.sort()
    return output_tokens, [p for p, _ in masked], [t for _, t in masked]


def make_features(pair: SegmentPair, vocab: Vocab, config: PretrainingConfig,
                  rng: random.Random) -> dict:
    """Mask one pair and return the model inputs (unpadded, int64 arrays of length L <= max_seq_length):
    input_ids, token_type_ids, attention_mask, labels (-100 = not predicted) and next_sentence_label."""
    tokens, segment_ids = pair_to_tokens(pair)
    masked_tokens, positions, label_tokens = create_masked_lm_predictions(
        tokens, config.masked_lm_prob, config.max_predictions_per_seq, vocab.words, rng,
        config.do_whole_word_mask)
    labels = np.full(len(tokens), IGNORE_INDEX, dtype=np.int64)
    labels[positions] = vocab.ids(label_tokens)
    return {
        "input_ids": vocab.ids(masked_tokens),
        "token_type_ids": np.asarray(segment_ids, dtype=np.int64),
        "attention_mask": np.ones(len(tokens), dtype=np.int64),
        "labels": labels,
        "next_sentence_label": np.int64(pair.is_random_next),
    }


# --- datasets ---------------------------------------------------------------------------------------------

def _prepare(documents, tokenize, rng: random.Random) -> list:
    """Tokenize, drop empties and shuffle the documents (the original's first rng draw)."""
    all_documents = tokenize_documents(documents, tokenize)
    if not all_documents:
        raise ValueError("the corpus has no non-empty document after tokenization")
    rng.shuffle(all_documents)
    return all_documents


class StaticMaskingDataset:
    """The original recipe: ``dupe_factor`` passes over the corpus, each pair masked once, all fixed.

    ``dataset[i]`` is a feature dict (see :func:`make_features`); the instances are shuffled.
    """

    def __init__(self, documents: list, tokenize: Callable[[str], list], vocab, config=PretrainingConfig(),
                 seed: int = 12345):
        self.vocab, self.config = Vocab(vocab), config
        rng = random.Random(seed)
        all_documents = _prepare(documents, tokenize, rng)
        self.instances = []
        for _ in range(config.dupe_factor):
            for document_index in range(len(all_documents)):
                for pair in create_segment_pairs(all_documents, document_index, config.max_seq_length,
                                                 config.short_seq_prob, rng):
                    self.instances.append(make_features(pair, self.vocab, config, rng))
        rng.shuffle(self.instances)

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, index: int) -> dict:
        return self.instances[index]


def epoch_seed(seed: int, epoch: int, index: int) -> int:
    """An independent, reproducible seed for (seed, epoch, index), via NumPy's SeedSequence hashing."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, np.uint64)[0])


class DynamicMaskingDataset:
    """Dynamic masking (RoBERTa §4.1): the segment pairs are made once; the MLM masks are redrawn each
    epoch. Call ``set_epoch(e)`` before iterating epoch e; item i of epoch e is masked with
    ``random.Random(epoch_seed(seed, e, i))``, so any epoch can be reproduced on its own."""

    def __init__(self, documents: list, tokenize: Callable[[str], list], vocab, config=PretrainingConfig(),
                 seed: int = 12345):
        self.vocab, self.config, self.seed, self.epoch = Vocab(vocab), config, seed, 0
        rng = random.Random(seed)
        all_documents = _prepare(documents, tokenize, rng)
        self.pairs = [pair
                      for _ in range(config.dupe_factor)
                      for document_index in range(len(all_documents))
                      for pair in create_segment_pairs(all_documents, document_index, config.max_seq_length,
                                                       config.short_seq_prob, rng)]
        rng.shuffle(self.pairs)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        rng = random.Random(epoch_seed(self.seed, self.epoch, index))
        return make_features(self.pairs[index], self.vocab, self.config, rng)
