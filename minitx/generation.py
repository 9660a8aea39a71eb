"""Text generation for causal language models: greedy, sampling and beam search, with HF ``generate`` semantics.

A causal LM gives, for every prefix, a distribution over the next token. ``generate`` extends a prompt one token at a
time:

1. run the model on the new token(s) — with a KV cache only the last token is fed, the keys/values of the earlier ones
   are reused (``past_key_values``);
2. take the last position's logits ``(B, V)`` and pass them through *logits processors* (repetition penalty,
   n-gram blocking, min length, then — when sampling — temperature, top-k, top-p);
3. pick the next token: ``argmax`` (greedy), a draw from ``softmax`` (sampling), or keep the ``num_beams`` best
   partial sequences by summed log-probability (beam search);
4. stop at ``max_length`` or when every sequence has produced ``eos_token_id``.

Every step mirrors HF transformers' ``GenerationMixin`` (5.x), so the same model and arguments give token-for-token
the same output. Everything here works on NumPy arrays: ``input_ids`` ``(B, L)`` int64 and ``scores`` ``(B, V)``
float32 (float32 throughout, as in HF). The token ids, attention mask and position ids live in arrays allocated once
for ``max_length`` positions; each step reads a view of the filled part.

The model contract (what ``GenerationMixin`` needs from its host class)::

    out = self(input_ids, attention_mask=..., position_ids=..., past_key_values=..., use_cache=True)
    out.logits            # (B, L, V)   Tensor or ndarray
    out.past_key_values   # the cache to pass back next step (nested tuples/lists of (B, ...) Tensors or arrays,
                          # or objects with .reorder_cache(beam_idx))

and, optionally (GPT-2 has both):

    self.new_kv_cache(max_length)   # an empty cache with room for max_length positions, passed on the first step
    self(..., logits_to_keep=1)     # logits of the last position only, (B, 1, V)
"""
import inspect

import numpy as np

from minitx.random import default_generator
from minitx.tensor import Tensor, data_of, no_grad

NEG_LARGE = np.float32(-1.0e9)  # HF's "this candidate can never be chosen" score for beam bookkeeping


# ============================================================================ logits processors
class LogitsProcessor:
    """``processor(input_ids (B, L) int64, scores (B, V) float32) -> new scores (B, V)``; never edits in place."""

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class LogitsProcessorList(list):
    """Apply processors in order."""

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        for processor in self:
            scores = processor(input_ids, scores)
        return scores


class MinLengthLogitsProcessor(LogitsProcessor):
    """While the sequence (prompt included) is shorter than ``min_length``, EOS gets score -inf."""

    def __init__(self, min_length: int, eos_token_id):
        if not isinstance(min_length, int) or min_length < 0:
            raise ValueError(f"min_length must be a non-negative int, got {min_length!r}")
        self.min_length = min_length
        self.eos_token_id = _as_id_list(eos_token_id)

    def __call__(self, input_ids, scores):
        scores = scores.copy()
        if input_ids.shape[-1] < self.min_length:
            scores[:, [e for e in self.eos_token_id if e < scores.shape[-1]]] = -np.inf
        return scores


class RepetitionPenaltyLogitsProcessor(LogitsProcessor):
    """CTRL (Keskar et al. 2019, §4.1): every token already in the sequence has its logit divided by ``penalty``.

    Applied once per distinct token:  s <- s / penalty  if s > 0,  s <- s · penalty  if s < 0  (both lower it when
    penalty > 1). ``prompt_ignore_length``: leading positions to skip — an int, or one int per row (the left padding of
    each row, so pad tokens are not penalised).
    """

    def __init__(self, penalty: float, prompt_ignore_length=None):
        if not isinstance(penalty, float) or not penalty > 0:
            raise ValueError(f"repetition penalty must be a positive float, got {penalty!r}")
        self.penalty = penalty
        self.prompt_ignore_length = prompt_ignore_length

    def __call__(self, input_ids, scores):
        batch, vocab = scores.shape
        positions = np.arange(input_ids.shape[1])
        ignore = np.zeros(batch, dtype=np.int64) if self.prompt_ignore_length is None \
            else np.broadcast_to(np.asarray(self.prompt_ignore_length), (batch,))
        seen = np.zeros((batch, vocab + 1), dtype=bool)  # column `vocab` absorbs skipped / out-of-vocab ids
        counted = np.where(positions[None, :] >= ignore[:, None], np.minimum(input_ids, vocab), vocab)
        seen[np.arange(batch)[:, None], counted] = True
        seen = seen[:, :vocab]
        penalised = np.where(scores < 0, scores * self.penalty, scores / self.penalty).astype(scores.dtype)
        return np.where(seen, penalised, scores)


class NoRepeatNGramLogitsProcessor(LogitsProcessor):
    """Ban any token that would repeat an n-gram already in the sequence (fairseq's ``no_repeat_ngram_size``).

    With n = ``ngram_size``: the last n-1 tokens form a prefix; every earlier n-gram starting with that prefix bans
    its last token (score -inf).
    """

    def __init__(self, ngram_size: int):
        if not isinstance(ngram_size, int) or ngram_size <= 0:
            raise ValueError(f"ngram_size must be a positive int, got {ngram_size!r}")
        self.ngram_size = ngram_size

    def __call__(self, input_ids, scores):
        n, cur_len = self.ngram_size, input_ids.shape[-1]
        if cur_len < n:
            return scores
        vocab = scores.shape[-1]
        windows = np.lib.stride_tricks.sliding_window_view(input_ids, n, axis=1)  # (B, L-n+1, n)
        prefix = input_ids[:, cur_len + 1 - n:]                                    # (B, n-1)
        matches = np.all(windows[:, :, :-1] == prefix[:, None, :], axis=-1)        # (B, L-n+1)
        banned = np.zeros((scores.shape[0], vocab + 1), dtype=bool)
        banned_ids = np.where(matches, np.minimum(windows[:, :, -1], vocab), vocab)
        banned[np.arange(scores.shape[0])[:, None], banned_ids] = True
        return np.where(banned[:, :vocab], np.float32(-np.inf), scores).astype(scores.dtype)


class TemperatureLogitsWarper(LogitsProcessor):
    """s <- s / T: T < 1 sharpens the distribution, T > 1 flattens it."""

    def __init__(self, temperature: float):
        if not isinstance(temperature, float) or not temperature > 0:
            raise ValueError(f"temperature must be a positive float, got {temperature!r} "
                             "(for greedy decoding use do_sample=False)")
        self.temperature = temperature

    def __call__(self, input_ids, scores):
        return scores / np.float32(self.temperature)


class TopKLogitsWarper(LogitsProcessor):
    """Keep the ``top_k`` highest scores (ties with the k-th included), set the rest to ``filter_value``."""

    def __init__(self, top_k: int, filter_value: float = -np.inf, min_tokens_to_keep: int = 1):
        if not isinstance(top_k, int) or top_k <= 0:
            raise ValueError(f"top_k must be a positive int, got {top_k!r}")
        self.top_k = max(top_k, min_tokens_to_keep)
        self.filter_value = filter_value

    def __call__(self, input_ids, scores):
        k = min(self.top_k, scores.shape[-1])
        kth_largest = -np.partition(-scores, k - 1, axis=-1)[:, k - 1:k]
        return np.where(scores < kth_largest, np.float32(self.filter_value), scores).astype(scores.dtype)


class TopPLogitsWarper(LogitsProcessor):
    """Nucleus sampling (Holtzman et al. 2020, §3.1): keep the smallest set of most likely tokens whose probability
    adds up to at least ``top_p``; the rest get ``filter_value``. At least ``min_tokens_to_keep`` are always kept."""

    def __init__(self, top_p: float, filter_value: float = -np.inf, min_tokens_to_keep: int = 1):
        top_p = float(top_p)
        if not 0.0 <= top_p <= 1.0:
            raise ValueError(f"top_p must be in [0, 1], got {top_p}")
        self.top_p = top_p
        self.filter_value = filter_value
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, input_ids, scores):
        order = np.argsort(scores, axis=-1, kind="stable")                 # ascending
        sorted_scores = np.take_along_axis(scores, order, axis=-1)
        cumulative = np.cumsum(_softmax(sorted_scores), axis=-1)
        remove_sorted = cumulative <= (1 - self.top_p)                     # the low tail holding ≤ 1 - p of the mass
        remove_sorted[:, -self.min_tokens_to_keep:] = False
        remove = np.zeros_like(remove_sorted)
        np.put_along_axis(remove, order, remove_sorted, axis=-1)
        return np.where(remove, np.float32(self.filter_value), scores).astype(scores.dtype)


# ============================================================================ small array helpers
def _as_id_list(token_ids):
    if token_ids is None:
        return None
    if isinstance(token_ids, (int, np.integer)):
        return [int(token_ids)]
    return [int(t) for t in token_ids]


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _topk(x: np.ndarray, k: int):
    """The k largest entries of each row, descending (ties: lower index first). Returns (values, indices).

    Only entries ≥ the row's k-th largest value can be chosen: ``np.partition`` finds that value in O(n), and
    only those few entries are sorted (a full sort of a beam row, num_beams · V scores, costs ~25× more).
    """
    n = x.shape[-1]
    if k >= n:
        indices = np.argsort(-x, axis=-1, kind="stable")[:, :k]
    else:
        kth_largest = np.partition(x, n - k, axis=-1)[:, n - k]                        # (B,)
        indices = np.empty((x.shape[0], k), dtype=np.int64)
        for row, threshold in enumerate(kth_largest):
            candidates = np.flatnonzero(x[row] >= threshold)                           # ≥ k, ascending
            indices[row] = candidates[np.argsort(-x[row, candidates], kind="stable")[:k]]
    return np.take_along_axis(x, indices, axis=-1), indices


def _sample_categorical(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of (B, V) probabilities, by inverting the CDF at a uniform u."""
    cdf = np.cumsum(probs, axis=-1)
    u = rng.random((probs.shape[0], 1), dtype=probs.dtype) * cdf[:, -1:]
    return np.minimum((cdf <= u).sum(axis=-1), probs.shape[-1] - 1).astype(np.int64)


def _sample_without_replacement(log_weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k distinct indices per row, drawn ∝ exp(log_weights) without replacement (the Gumbel-top-k trick)."""
    gumbel = -np.log(-np.log(rng.random(log_weights.shape, dtype=log_weights.dtype)))
    return _topk(log_weights + gumbel, k)[1]


def _reorder_cache(cache, beam_idx: np.ndarray):
    """Select rows ``beam_idx`` of every batch-first array in a (nested) KV cache."""
    if cache is None:
        return None
    if hasattr(cache, "reorder_cache"):
        cache.reorder_cache(beam_idx)
        return cache
    if isinstance(cache, Tensor):
        return Tensor(cache.data[beam_idx], _copy=False)
    if isinstance(cache, np.ndarray):
        return cache[beam_idx]
    if isinstance(cache, (tuple, list)):
        return type(cache)(_reorder_cache(c, beam_idx) for c in cache)
    raise TypeError(f"generate: cannot reorder a KV cache of type {type(cache).__name__} for beam search; give it a "
                    "reorder_cache(beam_idx) method or use nested tuples of arrays")


# ============================================================================ generate
class GenerationMixin:
    """Adds ``generate(input_ids, ...)`` to a causal LM (see the module docstring for the model contract)."""

    def generate(self, input_ids, attention_mask=None, *, max_length: int = None, max_new_tokens: int = None,
                 min_length: int = 0, do_sample: bool = False, temperature: float = 1.0, top_k: int = 50,
                 top_p: float = 1.0, repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0,
                 num_beams: int = 1, length_penalty: float = 1.0, early_stopping=False,
                 num_return_sequences: int = 1, eos_token_id=None, pad_token_id: int = None,
                 use_cache: bool = True, generator: np.random.Generator = None,
                 logits_processor: list = None) -> np.ndarray:
        """Continue each prompt of ``input_ids`` (B, L); return int64 (B · num_return_sequences, L + new) like HF.

        Lengths: ``max_new_tokens`` new tokens, or ``max_length`` in total (prompt included); default 20 new tokens.
        Decoding: greedy (default), sampling (``do_sample=True``: ``temperature``, ``top_k``, ``top_p``; draws come from
        ``generator`` or the global ``minitx.manual_seed`` generator), beam search (``num_beams > 1``; scores are summed
        log-probabilities divided by ``new_length ** length_penalty``; ``early_stopping``: True stops a batch row as
        soon as ``num_beams`` hypotheses are finished, False stops when the best running beam can no longer beat the
        worst finished one at its current length, "never" uses the best length reachable).
        ``attention_mask`` (B, L) 1/0 marks real/pad tokens of a *left*-padded batch. Finished rows are filled with
        ``pad_token_id`` (default: the first ``eos_token_id``).
        """
        ids = data_of(input_ids).astype(np.int64)
        if ids.ndim == 1:
            ids = ids[None, :]
        if ids.ndim != 2:
            raise ValueError(f"generate: input_ids must be (batch, length), got shape {ids.shape}")
        config = getattr(self, "config", None)
        eos = _as_id_list(eos_token_id if eos_token_id is not None else getattr(config, "eos_token_id", None))
        if pad_token_id is None:
            pad_token_id = getattr(config, "pad_token_id", None)
        if pad_token_id is None and eos is not None:
            pad_token_id = eos[0]
        if attention_mask is None:
            attention_mask = self._default_attention_mask(ids, pad_token_id, eos)
        mask = data_of(attention_mask).astype(np.int64)
        if mask.shape != ids.shape:
            raise ValueError(f"generate: attention_mask is {mask.shape} but input_ids is {ids.shape}")
        if num_beams > 1 and num_return_sequences > num_beams:
            raise ValueError(f"generate: num_return_sequences ({num_return_sequences}) must be <= num_beams "
                             f"({num_beams})")

        expand = max(num_beams, num_return_sequences)
        ids, mask = np.repeat(ids, expand, axis=0), np.repeat(mask, expand, axis=0)
        prompt_len = ids.shape[1]
        if max_new_tokens is not None:
            max_length = prompt_len + max_new_tokens
        elif max_length is None:
            max_length = prompt_len + 20
        if prompt_len >= max_length:
            raise ValueError(f"generate: the prompt has {prompt_len} tokens but max_length is {max_length}; "
                             "raise max_length or use max_new_tokens")

        processors = self._logits_processors(
            mask, min_length, do_sample, temperature, top_k, top_p, repetition_penalty, no_repeat_ngram_size,
            num_beams, eos, logits_processor)
        rng = generator if generator is not None else default_generator()
        state = _DecodingState(self, mask, max_length, use_cache)
        if num_beams > 1:
            return self._beam_search(ids, state, processors, max_length, num_beams, length_penalty, early_stopping,
                                     num_return_sequences, eos, pad_token_id, do_sample, rng)
        return self._sample(ids, state, processors, max_length, eos, pad_token_id, do_sample, rng)

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _default_attention_mask(ids, pad_token_id, eos):
        """HF's inference: mask out pad tokens only when pad is present and differs from EOS; else all ones."""
        if pad_token_id is not None and np.any(ids == pad_token_id) and (eos is None or pad_token_id not in eos):
            return (ids != pad_token_id).astype(np.int64)
        return np.ones_like(ids)

    @staticmethod
    def _logits_processors(mask, min_length, do_sample, temperature, top_k, top_p, repetition_penalty,
                           no_repeat_ngram_size, num_beams, eos, extra) -> LogitsProcessorList:
        """The processor chain, in HF's order: penalties and constraints first, then the sampling warpers."""
        processors = LogitsProcessorList()
        if repetition_penalty is not None and repetition_penalty != 1.0:
            left_padding = np.argmax(mask != 0, axis=1)  # each row's count of leading pads
            processors.append(RepetitionPenaltyLogitsProcessor(float(repetition_penalty), left_padding))
        if no_repeat_ngram_size:
            processors.append(NoRepeatNGramLogitsProcessor(no_repeat_ngram_size))
        if min_length and eos is not None:
            processors.append(MinLengthLogitsProcessor(min_length, eos))
        processors.extend(extra or [])
        if do_sample:
            keep = (len(eos) + 1 if eos is not None else 2) if num_beams > 1 else 1  # beams need a non-EOS choice
            if temperature is not None and temperature != 1.0:
                processors.append(TemperatureLogitsWarper(float(temperature)))
            if top_k:
                processors.append(TopKLogitsWarper(top_k, min_tokens_to_keep=keep))
            if top_p is not None and top_p < 1.0:
                processors.append(TopPLogitsWarper(top_p, min_tokens_to_keep=keep))
        return processors

    # ------------------------------------------------------------------ greedy / sampling
    def _sample(self, prompt, state, processors, max_length, eos, pad_token_id, do_sample, rng):
        batch, cur_len = prompt.shape
        sequences = np.empty((batch, max_length), dtype=np.int64)                # filled up to cur_len
        sequences[:, :cur_len] = prompt
        unfinished = np.ones(batch, dtype=bool)
        while True:
            ids = sequences[:, :cur_len]
            scores = processors(ids, state.next_token_logits(ids))              # (B, V)
            if do_sample:
                next_tokens = _sample_categorical(_softmax(scores), rng)
            else:
                next_tokens = np.argmax(scores, axis=-1)
            if eos is not None:  # finished rows only receive padding
                next_tokens = np.where(unfinished, next_tokens, pad_token_id)
                unfinished &= ~np.isin(next_tokens, eos)
            sequences[:, cur_len] = next_tokens
            cur_len += 1
            if cur_len >= max_length or not unfinished.any():
                return sequences[:, :cur_len]

    # ------------------------------------------------------------------ beam search
    def _beam_search(self, ids, state, processors, max_length, num_beams, length_penalty, early_stopping,
                     num_return_sequences, eos, pad_token_id, do_sample, rng):
        """Beam search as in HF 5.x: keep the ``num_beams`` best running beams and the ``num_beams`` best finished
        hypotheses per batch row, all in fixed-size arrays.

        Each step expands every running beam by every token, keeps the top K = max(2, 1 + #eos) · num_beams
        candidates (so at least num_beams stay unfinished even if the top ones end in EOS), moves candidates that hit
        EOS or max_length — and rank among the top num_beams — into the finished set with score
        ``sum_logprob / new_len ** length_penalty``, and continues with the best num_beams unfinished ones.
        """
        batch = ids.shape[0] // num_beams
        prompt_len = cur_len = ids.shape[1]
        n_eos = len(eos) if eos is not None else 0
        beams_to_keep = max(2, 1 + n_eos) * num_beams
        top_num_beam_mask = np.arange(beams_to_keep) < num_beams

        fill = (pad_token_id or eos[0]) if eos is not None else -1
        running = np.full((batch, num_beams, max_length), fill, dtype=np.int64)      # (B, nb, T)
        running[:, :, :cur_len] = ids.reshape(batch, num_beams, cur_len)
        finished = running.copy()
        running_scores = np.zeros((batch, num_beams), dtype=np.float32)
        running_scores[:, 1:] = NEG_LARGE        # step 1: only beam 0 expands (all beams hold the same prompt)
        finished_scores = np.full((batch, num_beams), NEG_LARGE, dtype=np.float32)
        is_finished = np.zeros((batch, num_beams), dtype=bool)
        can_improve = np.ones((batch, 1), dtype=bool)
        running_origin = np.full((batch, num_beams, max_length - prompt_len), -1, dtype=np.int64)
        finished_origin = running_origin.copy()
        rows = np.arange(batch)[:, None] * num_beams                                   # (B, 1) flat offsets

        flat_ids = ids
        while True:
            logits = state.next_token_logits(flat_ids)                                    # (B·nb, V)
            log_probs = processors(flat_ids, _log_softmax(logits))
            vocab = log_probs.shape[-1]
            log_probs = log_probs.reshape(batch, num_beams, vocab) + running_scores[:, :, None]
            log_probs = log_probs.reshape(batch, num_beams * vocab)

            # c. the top K continuations over all beams of each row
            if do_sample:
                cand = _sample_without_replacement(log_probs, beams_to_keep, rng)
                cand_scores = np.take_along_axis(log_probs, cand, axis=1)
                order = np.argsort(-cand_scores, axis=1, kind="stable")
                cand, cand_scores = np.take_along_axis(cand, order, 1), np.take_along_axis(cand_scores, order, 1)
            else:
                cand_scores, cand = _topk(log_probs, beams_to_keep)                       # (B, K)
            cand_beam, cand_token = cand // vocab, cand % vocab
            cand_seqs = np.take_along_axis(running, cand_beam[:, :, None], axis=1)       # (B, K, T)
            cand_seqs[:, :, cur_len] = cand_token
            cand_origin = np.take_along_axis(running_origin, cand_beam[:, :, None], axis=1)
            cand_origin[:, :, cur_len - prompt_len] = cand_beam + rows

            # d. which candidates end here
            hits_stop = np.full(cand_token.shape, cur_len + 1 >= max_length)
            if eos is not None:
                hits_stop = hits_stop | np.isin(cand_token, eos)

            # e. the best num_beams unfinished candidates keep running
            alive_scores = cand_scores + hits_stop.astype(np.float32) * NEG_LARGE
            keep = _topk(alive_scores, num_beams)[1]
            running = np.take_along_axis(cand_seqs, keep[:, :, None], axis=1)
            running_scores = np.take_along_axis(alive_scores, keep, axis=1)
            running_origin = np.take_along_axis(cand_origin, keep[:, :, None], axis=1)

            # f. finished candidates among the top num_beams enter the finished set if they beat it
            # BEGIN SOLUTION hint="beam scorer: a candidate that hit EOS/max_length and ranks in the top num_beams gets score cand_scores / (cur_len + 1 - prompt_len) ** length_penalty (NEG_LARGE if its row is full with early_stopping=True, or ~can_improve); merge with finished_scores and keep the num_beams best: update finished, finished_scores, finished_origin, is_finished"
            just_finished = hits_stop & top_num_beam_mask[None, :]
            final_scores = cand_scores / np.float32((cur_len + 1 - prompt_len) ** length_penalty)
            row_is_full = np.all(is_finished, axis=-1, keepdims=True) & (early_stopping is True)
            final_scores = final_scores + row_is_full.astype(np.float32) * NEG_LARGE
            final_scores = final_scores + (~can_improve).astype(np.float32) * NEG_LARGE
            final_scores = final_scores + (~just_finished).astype(np.float32) * NEG_LARGE
            merged_scores = np.concatenate([finished_scores, final_scores], axis=1)
            best = _topk(merged_scores, num_beams)[1]
            finished = np.take_along_axis(np.concatenate([finished, cand_seqs], 1), best[:, :, None], axis=1)
            finished_scores = np.take_along_axis(merged_scores, best, axis=1)
            finished_origin = np.take_along_axis(np.concatenate([finished_origin, cand_origin], 1),
                                                 best[:, :, None], axis=1)
            is_finished = np.take_along_axis(np.concatenate([is_finished, just_finished], 1), best, axis=1)
            # END SOLUTION

            # g. the cache follows the beams that survived; then decide whether to go on
            state.reorder(running_origin[:, :, cur_len - prompt_len].reshape(-1))
            cur_len += 1
            can_improve = self._can_still_improve(can_improve, running_scores, finished_scores, is_finished,
                                                  cur_len, max_length, prompt_len, early_stopping, length_penalty)
            rows_open = ~(np.all(is_finished) & (early_stopping is True))
            if not (can_improve.any() and rows_open and not hits_stop.all()):
                break
            flat_ids = running[:, :, :cur_len].reshape(batch * num_beams, cur_len)

        # 5. the best num_return_sequences finished hypotheses, cropped to the longest one
        out = finished[:, :num_return_sequences].reshape(batch * num_return_sequences, max_length)
        origin = finished_origin[:, :num_return_sequences].reshape(batch * num_return_sequences, -1)
        generated = int((origin != -1).sum(axis=1).max())
        return out[:, :prompt_len + generated]

    @staticmethod
    def _can_still_improve(can_improve, running_scores, finished_scores, is_finished, cur_len, max_length,
                           prompt_len, early_stopping, length_penalty):
        """Could the best running beam still beat the worst finished hypothesis? (HF's early-stop heuristic.)

        Its best possible score is its current sum of log-probs at length ``cur_len`` — or at ``max_length`` when
        ``early_stopping="never"`` and ``length_penalty > 0`` (longer can only help then).
        """
        if early_stopping == "never" and length_penalty > 0.0:
            best_length = max_length - prompt_len
        else:
            best_length = cur_len - prompt_len
        best_running = running_scores[:, :1] / np.float32(best_length ** length_penalty)
        worst_finished = np.where(is_finished, np.min(finished_scores, axis=1, keepdims=True), NEG_LARGE)
        return can_improve & np.any(best_running > worst_finished, axis=-1, keepdims=True)


class _DecodingState:
    """What the model needs between steps: the attention mask, the position ids and the KV cache, each allocated
    once for ``max_length`` positions (a step reads views; nothing grows per token).

    Positions count real tokens only (``cumsum(mask) - 1``; pads get 0), so a left-padded prompt sees the same
    positions as the same prompt alone; every generated token is real (mask 1, position + 1).
    """

    def __init__(self, model, attention_mask: np.ndarray, max_length: int, use_cache: bool):
        batch, prompt_len = attention_mask.shape
        self.model = model
        self.mask = np.ones((batch, max_length), dtype=np.int64)                      # (N, T)
        self.mask[:, :prompt_len] = attention_mask
        prompt_positions = np.where(attention_mask == 0, 0, np.cumsum(attention_mask, axis=1) - 1)
        self.positions = prompt_positions[:, -1:] + np.arange(1 - prompt_len, max_length - prompt_len + 1)
        self.positions[:, :prompt_len] = prompt_positions                               # (N, T)
        self.use_cache = use_cache
        self.cache = model.new_kv_cache(max_length) if use_cache and hasattr(model, "new_kv_cache") else None
        self.cached = 0                                                                 # positions in the cache
        self.options = {"logits_to_keep": 1} if _accepts(model, "logits_to_keep") else {}

    def next_token_logits(self, ids: np.ndarray) -> np.ndarray:
        """Run the model on what it has not seen yet; return the last position's logits (N, V) in float32."""
        length = ids.shape[1]
        with no_grad():
            out = self.model(ids[:, self.cached:], attention_mask=self.mask[:, :length],
                             position_ids=self.positions[:, self.cached:length], past_key_values=self.cache,
                             use_cache=self.use_cache, **self.options)
        if self.use_cache:
            self.cache, self.cached = out.past_key_values, length
        return np.asarray(data_of(out.logits)[:, -1, :], dtype=np.float32)

    def reorder(self, beam_idx: np.ndarray) -> None:
        """Beam search: row i of the next step continues row ``beam_idx[i]`` of this one."""
        if self.use_cache:
            self.cache = _reorder_cache(self.cache, beam_idx)


def _accepts(model, argument: str) -> bool:
    """Whether the model's forward takes ``argument`` (HF checks ``logits_to_keep`` support the same way)."""
    forward = getattr(model, "forward", model)
    return argument in inspect.signature(forward).parameters
