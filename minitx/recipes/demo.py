"""``minitx demo``: text to trained models on the built-in corpus, in a few minutes on two CPU cores.

1. corpus      ~3 000 English sentences from Python's own documentation (``pydoc_data.topics``), no download
2. pretrain    WordPiece vocab + BERT with masked-LM and next-sentence prediction (recipes/pretrain_bert.py)
3. fine-tune   the same BERT on *real vs word-shuffled sentence* classification (recipes/finetune.py)
4. fill-mask   the pretrained BERT fills in [MASK] in a few sentences
5. generate    byte-level BPE + a small GPT-2, then greedy and sampled continuations of a prompt

Everything (checkpoints, JSONL logs, loss curves, summary.json) lands in ``output_dir``.
"""
import json
import os
import time
from dataclasses import replace

import numpy as np

from minitx.data.corpus import builtin_corpus, corpus_stats
from minitx.models.bert import BertForPreTraining
from minitx.models.gpt2 import GPT2LMHeadModel
from minitx.recipes.fill_mask import fill_mask
from minitx.recipes.finetune import FinetuneSettings, finetune, shuffled_sentence_task
from minitx.recipes.pretrain_bert import BertPretrainingSettings, pretrain_bert, split_documents
from minitx.recipes.pretrain_gpt2 import GPT2PretrainingSettings, pretrain_gpt2
from minitx.tokenizers import WordPieceTokenizer
from minitx.tokenizers.bpe import ByteLevelBPETokenizer

# (sentence, the word a reader expects), written in the corpus's style before the model was asked: none of them
# is a sentence of the corpus. The demo shows the top 3 guesses and counts how often the expected word is first.
MASK_EXAMPLES = [
    ('The "while" [MASK] is used for repeated execution.', "statement"),
    ("If the index is out of range, an [MASK] is raised.", "exception"),
    ('If all expressions are false, the [MASK] of the "else" clause is executed.', "suite"),
    ("The function is called with positional and keyword [MASK].", "arguments"),
    ("This method returns a new [MASK].", "object"),
    ('A class may define a "__len__()" [MASK].', "method"),
    ("The [MASK] is evaluated and the result is assigned to the target.", "expression"),
    ('The "def" statement is used to define a [MASK].', "function"),
    ("If the condition is true, the loop [MASK] is executed.", "body"),
]
PROMPT = "The function"
GREEDY = {"no_repeat_ngram_size": 3, "repetition_penalty": 1.2}
DECODING = {"greedy": "no repeated 3-gram, repetition penalty 1.2", "sampled": "top-k 40, top-p 0.95",
            "beam": "4 beams, no repeated 2-gram"}


def quick_settings():
    """Tiny sizes for tests and smoke runs (seconds, not minutes; the numbers mean little)."""
    return (BertPretrainingSettings(max_steps=4, batch_size=8, vocab_size=300, hidden_size=32, intermediate_size=64,
                                    num_attention_heads=2, dupe_factor=1),
            FinetuneSettings(max_steps=4, batch_size=8),
            GPT2PretrainingSettings(max_steps=4, batch_size=4, vocab_size=300, n_embd=32, n_head=2))


DEFAULT_MINUTES = 5.0
ALIBI_SLOPES = (2.0, 1.0, 0.0, 0.0)  # BERT's 4 heads: two local (a key k tokens away weighs e^-2k, e^-k), two global


def demo_settings(minutes: float = DEFAULT_MINUTES):
    """The full demo's sizes: about ``minutes`` of training on two cores (the step counts scale with it).

    Chosen from measured points (2-core AMD EPYC, AVX2, 2 threads; eval = the held-out split of each recipe;
    the seconds are from runs that shared the cores with another job, so upper bounds):
    GPT-2 2L/96H, BPE vocab 1000, blocks of 64, batch 32, lr 6e-3, dropout 0: warm-up matters most. With 5%
      warm-up (15 steps) the loss stalled near 5.0 and eval perplexity after 300 steps was 110; with 20%
      (60 steps) it is 270/125/78/58/50/47 at steps 50-300 (89 s), and 35 after 400 steps. Longer runs
      overfit the small corpus (a 1200-step run: 58/37/32/36/46/57 at steps 200-1200), so each recipe
      evaluates at six even steps and keeps the weights with the best held-out loss.
    BERT 2L/96H, WordPiece vocab 2000, batch 32, lr 2e-3, 40% of the training tokens masked (held-out: BERT's 15%;
      Wettig et al., 2022): with BERT's learned position vectors MLM accuracy stayed at 0.16-0.19 (unigram
      baseline 0.072) whatever was tried: 15% masking 0.164, dropout 0, lr 1e-3/4e-3/6e-3, 10-20% warm-up,
      batch 128, vocab 1000, width 128, one layer, initializer range 0.05, sinusoid-initialised positions, 4x the
      text, and 2400 steps (``--minutes 20``) 0.188, while a count-based predictor from the two neighbouring
      tokens gets 0.33 on the same held-out text. The model had not learnt *where its neighbours are*: with
      learned positions that takes a query-key match for every pair of the 64 positions. ALiBi (Press et al.,
      2022) gives every head a distance penalty -m·|i - j| from step 1 instead (BertConfig
      position_embedding_type="alibi"); 600 steps each, 2-core Xeon (AVX-512):
        slopes 2, 1, 0.5, 0  with position vectors too, dropout 0.1: 0.247 (NSP 0.547)   dropout 0: 0.258
        slopes 2, 1, 0.5, 0  without position vectors, dropout 0: 0.266 (NSP 0.547, the majority class)
        slopes 2, 1, 0, 0    (two local heads, two global)       : 0.266 (NSP 0.584)  <- the demo
        the paper's slopes 1/4 .. 1/256 (4 heads, dropout 0.1): 0.197; 8 heads (1/2 .. 1/256): 0.221 -- too
        flat for 64-token sequences; lr 4e-3: stalled at the unigram baseline; a learned per-head bias for each
        distance (T5-style; position vectors kept, dropout 0) from 0: 0.190, from the slopes 2, 1, 0.5, 0: 0.268.
      The demo's run: 0.141/0.201/0.238/0.251/0.266/0.266 at steps 100-600, and the classifier fine-tuned on
      top reaches 0.901 (0.770 with position vectors). ``--minutes 10``: 0.207/0.252/0.281/0.289/0.298/0.303 at
      steps 200-1200 (NSP 0.645), 170 s.
    Fine-tuning (real vs word-shuffled sentences, 3 epochs): with dropout 0.1 the training loss stayed at
      0.69 for every learning rate tried (1e-4, 5e-4, 2e-3): accuracy 0.52-0.53 vs 0.50 by chance; with
      dropout 0 and lr 1e-3 it falls to 0.41 and the accuracy is 0.69.
    ``minitx demo --minutes N`` multiplies both pretraining step counts by N/5 (the schedules stretch with them).
    """
    if not minutes > 0:
        raise ValueError(f"demo_settings: minutes must be > 0, got {minutes}")
    bert_steps, gpt2_steps = (max(6, round(steps * minutes / DEFAULT_MINUTES)) for steps in (600, 300))
    return (BertPretrainingSettings(max_steps=bert_steps, eval_steps=bert_steps // 6, train_masked_lm_prob=0.4,
                                    position_embedding_type="alibi", alibi_slopes=ALIBI_SLOPES, dropout=0.0),
            FinetuneSettings(learning_rate=1e-3, dropout=0.0),
            GPT2PretrainingSettings(max_steps=gpt2_steps, batch_size=32, learning_rate=6e-3, warmup_ratio=0.2,
                                    dropout=0.0, eval_steps=gpt2_steps // 6))


class Stages:
    """Prints each stage's title, and on the next (or ``done``) how long the previous one took."""

    def __init__(self):
        self.started = self.stage_started = time.time()
        self.seconds = {}
        self.title = None

    def begin(self, title: str) -> None:
        self._end_previous()
        self.title, self.stage_started = title, time.time()
        print(f"\n== {title} " + "=" * max(0, 66 - len(title)), flush=True)

    def done(self) -> float:
        """Ends the last stage; returns the total wall time in seconds."""
        self._end_previous()
        return round(time.time() - self.started, 1)

    def _end_previous(self) -> None:
        if self.title is not None:
            self.seconds[self.title] = round(time.time() - self.stage_started, 1)
            print(f"   ({self.seconds[self.title]} s)", flush=True)
            self.title = None


def run_demo(output_dir: str, quick: bool = False, seed: int = 0, disable_tqdm: bool = False,
             minutes: float = DEFAULT_MINUTES) -> dict:
    """Run the five stages; print what happens and each stage's time, and return (and save) the summary.
    ``minutes`` scales the training steps (``demo_settings``); ``quick`` uses tiny sizes instead."""
    stages = Stages()
    bert_settings, finetune_settings, gpt2_settings = (
        quick_settings() if quick else demo_settings(minutes))
    bert_settings = replace(bert_settings, seed=seed)
    summary = {}

    stages.begin("1. corpus: Python's documentation (pydoc_data.topics)")
    documents = builtin_corpus()
    summary["corpus"] = corpus_stats(documents)
    print(", ".join(f"{k}: {v}" for k, v in summary["corpus"].items()))

    stages.begin("2. pretrain BERT (masked LM + next-sentence prediction)")
    bert = pretrain_bert(documents, os.path.join(output_dir, "bert"), bert_settings, disable_tqdm=disable_tqdm)
    summary["pretrain"] = bert
    print(f"MLM loss {bert['mlm_loss_before']:.3f} -> {bert['mlm_loss_after']:.3f}   "
          f"NSP loss {bert['nsp_loss_before']:.3f} -> {bert['nsp_loss_after']:.3f}")
    print(f"MLM accuracy {bert['mlm_accuracy']:.3f} vs unigram baseline {bert['unigram_baseline']:.3f}   "
          f"NSP accuracy {bert['nsp_accuracy']:.3f} vs majority {bert['nsp_majority_baseline']:.3f}"
          f"{kept_weights(bert, bert_settings.max_steps)}")

    stages.begin("3. fine-tune: real vs word-shuffled sentences")
    train_docs, eval_docs = split_documents(documents, bert_settings.eval_fraction, bert_settings.seed)
    train_examples = shuffled_sentence_task([s for d in train_docs for s in d], seed=seed)
    eval_examples = shuffled_sentence_task([s for d in eval_docs for s in d], seed=seed + 1)
    clf = finetune(bert["model_dir"], train_examples, eval_examples, os.path.join(output_dir, "finetune"),
                   task="sst2", settings=finetune_settings, disable_tqdm=disable_tqdm)
    summary["finetune"] = clf
    print(f"accuracy {clf['eval_acc']:.3f} vs majority baseline {clf['majority_baseline']:.3f} "
          f"({clf['eval_examples']} held-out sentences)")

    stages.begin("4. fill in [MASK] with the pretrained BERT")
    model = BertForPreTraining.from_pretrained(bert["model_dir"])
    tokenizer = WordPieceTokenizer.from_pretrained(bert["model_dir"])
    summary["fill_mask"] = fill_mask_examples(model, tokenizer)
    first, top3, n = summary["fill_mask"]["first"], summary["fill_mask"]["top3"], len(MASK_EXAMPLES)
    print(f"the expected word is the first guess for {first} of {n} sentences, in the top 3 for {top3} of {n}")

    stages.begin("5. generate with a small GPT-2")
    gpt = pretrain_gpt2(documents, os.path.join(output_dir, "gpt2"), gpt2_settings, disable_tqdm=disable_tqdm)
    summary["gpt2"] = gpt
    print(f"eval perplexity {gpt['eval_perplexity']:.1f} (uniform guessing: {gpt['uniform_perplexity']})"
          f"{kept_weights(gpt, gpt2_settings.max_steps)}")
    summary["generate"] = generate_samples(gpt["model_dir"], PROMPT, seed)
    for name, text in summary["generate"].items():
        print(f"{name:>8} ({DECODING[name]}): {text!r}")

    summary["wall_time_s"] = stages.done()
    summary["stage_seconds"] = stages.seconds
    with open(os.path.join(output_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, default=float)
    print("\n== done " + "=" * 62)
    print(f"{summary['wall_time_s']} s. Checkpoints, logs (log.jsonl) and curves (curves.png) are in "
          f"{os.path.abspath(output_dir)}; the summary is summary.json there.")
    return summary


def fill_mask_examples(model, tokenizer) -> dict:
    """Print each MASK_EXAMPLES sentence with the model's top 3 words (✓ where the expected word is first);
    return the guesses and how many sentences have the expected word first and in the top 3."""
    result = {"guesses": {}, "first": 0, "top3": 0}
    for text, expected in MASK_EXAMPLES:
        guesses = fill_mask(model, tokenizer, text, top_k=3)[0]
        words = [token for token, _ in guesses]
        result["guesses"][text] = guesses
        result["first"] += words[0] == expected
        result["top3"] += expected in words
        mark = "✓" if words[0] == expected else " "
        print(f"{mark} {text}  ->  " + ", ".join(f"{token} ({p:.2f})" for token, p in guesses)
              + f"   [expected: {expected}]")
    return result


def kept_weights(result: dict, max_steps: int) -> str:
    """A note when the recipe kept an earlier evaluation's weights (the best held-out loss) over the last."""
    step = result["weights_from_step"]
    return "" if step == max_steps else f"\n(the weights of step {step}, the best held-out loss of the run)"


def generate_samples(model_dir: str, prompt: str, seed: int) -> dict:
    """Greedy, sampled and beam-search continuations of ``prompt``.

    A small model decoding greedily falls into loops ("is the is the ..."), so greedy and beam search block any
    repeated 3-gram (``no_repeat_ngram_size``) and greedy also divides the logit of every token already in the
    text by ``repetition_penalty`` (Keskar et al., 2019); sampling needs neither."""
    model = GPT2LMHeadModel.from_pretrained(model_dir)
    tokenizer = ByteLevelBPETokenizer.from_pretrained(model_dir)
    ids = np.asarray([tokenizer.encode(prompt)])
    runs = {"greedy": GREEDY, "sampled": {"do_sample": True, "top_k": 40, "top_p": 0.95,
                                      "generator": np.random.default_rng(seed)},
            "beam": {"num_beams": 4, "no_repeat_ngram_size": 2, "early_stopping": True}}
    return {name: tokenizer.decode(model.generate(ids, max_new_tokens=20, **options)[0])
            for name, options in runs.items()}
