"""Learning subword merges from word counts — the training loop shared by BPE and WordPiece.

Both start from every word spelled as single symbols and repeatedly glue the best adjacent pair (a, b)
into one new symbol; they differ only in what "best" means:

- BPE (Sennrich et al. 2016, "Neural Machine Translation of Rare Words with Subword Units", §3.1):
      score(a, b) = count(a b)                         — the most frequent pair.
- WordPiece (Schuster & Nakajima 2012, "Japanese and Korean Voice Search", §3.1; the scoring used by the
  HF course's WordPiece chapter):
      score(a, b) = count(a b) / (count(a) · count(b)) — the pair whose merge raises the corpus likelihood
      under a unigram model the most: it prefers pairs that occur together more often than chance.

Doing this naively (recount every pair after every merge) costs O(corpus) per merge. Here each merge only
visits the words that contain the pair (an index pair -> words), updates pair counts by the difference
between the word's pairs before and after, and a heap with lazy deletion finds the best pair: an entry is
used only if its stored score equals the pair's current score (every change pushes a fresh entry).
Ties are broken by the pair's strings (smallest first), so training is deterministic.
"""
import heapq
from collections import Counter, defaultdict


def _pairs(symbols):
    return Counter(zip(symbols, symbols[1:]))


def learn_merges(word_counts, num_symbols, join, min_frequency=2, score="count"):
    """Learns merges until they have made ``num_symbols`` new symbols (fewer if no pair reaches ``min_frequency``).

    word_counts:   {tuple of initial symbols: count}, e.g. {("l", "##o", "##w"): 5}
    join(a, b):    the merged symbol's string, e.g. ("l", "##o") -> "lo"
    min_frequency: a pair must occur at least this many times to be merged
    score:         "count" (BPE) or "likelihood" (WordPiece), see the module docstring
    Returns the list of merges [(a, b), ...] in the order they were learned. Two merges can make the same
    string (("a", "##bc") and ("ab", "##c") both make "abc"), so there may be more merges than new symbols.
    """
    if score not in ("count", "likelihood"):
        raise ValueError(f"score must be 'count' or 'likelihood', got {score!r}")
    words = [list(w) for w in sorted(word_counts)]  # sorted: the same order whatever the dict order
    freqs = [word_counts[tuple(w)] for w in words]

    pair_count = Counter()            # (a, b) -> occurrences in the corpus
    where = defaultdict(set)          # (a, b) -> indices of the words containing it
    symbol_count = Counter()          # a -> occurrences (the likelihood score's denominator)
    pairs_with = defaultdict(set)     # a -> pairs having a as one side (their score moves with count(a))
    for i, (w, f) in enumerate(zip(words, freqs)):
        for s in w:
            symbol_count[s] += f
        for p, n in _pairs(w).items():
            pair_count[p] += n * f
            where[p].add(i)
            pairs_with[p[0]].add(p)
            pairs_with[p[1]].add(p)

    def score_of(p):
        if score == "count":
            return pair_count[p]
        return pair_count[p] / (symbol_count[p[0]] * symbol_count[p[1]])

    heap = [(-score_of(p), p) for p in pair_count]
    heapq.heapify(heap)
    merges, known, new_symbols = [], set(symbol_count), 0
    while heap and new_symbols < num_symbols:
        neg_score, pair = heapq.heappop(heap)
        if pair_count[pair] < min_frequency or -neg_score != score_of(pair):
            continue  # stale entry (the pair changed since it was pushed) or too rare
        merges.append(pair)
        new = join(*pair)
        if new not in known:
            known.add(new)
            new_symbols += 1
        changed = _apply_merge(pair, new, words, freqs, pair_count, where, symbol_count, pairs_with)
        if score == "likelihood":  # count(a), count(b) fell: every pair with a or b as a side moved
            changed |= pairs_with[pair[0]] | pairs_with[pair[1]]
        for p in changed:
            if pair_count[p] > 0:
                heapq.heappush(heap, (-score_of(p), p))
    return merges


def _apply_merge(pair, new, words, freqs, pair_count, where, symbol_count, pairs_with):
    """Rewrites every word containing ``pair`` with ``new`` in its place; returns the pairs whose count changed."""
    a, b = pair
    changed = set()
    for i in list(where[pair]):
        w, f = words[i], freqs[i]
        merged, j = [], 0
        while j < len(w):  # left to right, non-overlapping: "a a a" with (a, a) -> "aa a"
            if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                merged.append(new)
                symbol_count[a] -= f
                symbol_count[b] -= f
                symbol_count[new] += f
                j += 2
            else:
                merged.append(w[j])
                j += 1
        before, after = _pairs(w), _pairs(merged)
        for p in before.keys() | after.keys():
            delta = after[p] - before[p]
            if delta:
                pair_count[p] += delta * f
                changed.add(p)
            if p not in after:
                where[p].discard(i)
            elif p not in before:
                where[p].add(i)
                pairs_with[p[0]].add(p)
                pairs_with[p[1]].add(p)
        words[i] = merged
    return changed
