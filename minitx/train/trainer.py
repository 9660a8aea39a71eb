"""``Trainer``: the training loop, HF-shaped, written out so every step can be read.

One optimizer step is::

    for each of gradient_accumulation_steps micro-batches:
        loss = model(**batch).loss / gradient_accumulation_steps
        loss.backward()                          # gradients accumulate in .grad
    clip_grad_norm_(params, max_grad_norm)       # Pascanu et al. 2013
    optimizer.step(); scheduler.step(); optimizer.zero_grad()

AdamW with decoupled weight decay (Loshchilov & Hutter, 2019) on every parameter except biases and
LayerNorm gains, a warm-up + decay schedule (BERT §A.2), logs as JSONL, a tqdm progress bar, loss and
learning-rate curves as PNG, and atomic checkpoints (``checkpoint.py``).

Determinism: the batch order of epoch e is a permutation drawn from ``default_rng([seed, e])``, and
the global generator (dropout) is saved in each checkpoint, so ``train(resume_from_checkpoint=...)``
continues bit-identically to a run that was never interrupted.

Data parallel (``mpiexec -n P``, see ``minitx/distributed.py``): the global batch is
``per_device_train_batch_size · P``; every rank draws the same order, takes its slice of each global batch
(``rank_slice``), computes its share of the global-mean loss (``global_mean``), and one all-reduce sums the
gradients before clipping, so every rank takes the step one process would. Rank 0 alone writes logs,
checkpoints, curves and the progress bar; evaluation runs whole on every rank (the same numbers everywhere).
"""
import json
import math
import os
from dataclasses import dataclass

import numpy as np

import minitx
from minitx import distributed
from minitx.data.collate import collate
from minitx.optim import AdamW, clip_grad_norm_, get_scheduler, param_groups_no_decay
from minitx.train.arguments import TrainingArguments
from minitx.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``train``: ``checkpoint`` is the directory written on the way out (None under MPI)."""

    def __init__(self, checkpoint):
        super().__init__(f"training interrupted; checkpoint: {checkpoint}")
        self.checkpoint = checkpoint


@dataclass
class EvalPrediction:
    """What ``compute_metrics`` receives: model predictions and the labels, concatenated over the eval set."""

    predictions: object
    label_ids: object


def _to_numpy(value):
    return value.numpy() if isinstance(value, minitx.Tensor) else value


def default_predictions(output) -> object:
    """The logits of an output object: ``.logits``, or the tuple of every ``*_logits`` field (BERT pretraining)."""
    if getattr(output, "logits", None) is not None:
        return _to_numpy(output.logits)
    fields = [k for k in output.keys() if k.endswith("logits")]
    return tuple(_to_numpy(output[k]) for k in fields)


class Trainer:
    """Train and evaluate a minitx model whose forward returns an object with ``.loss`` given labels.

    ``train_dataset`` / ``eval_dataset``: map-style (``len`` and ``[i]`` giving a feature dict); a dataset with
    ``set_epoch(e)`` (dynamic masking) is told each epoch. ``data_collator``: list of features -> batch dict of
    arrays (default: pad with ``minitx.data.collate``). ``compute_metrics(EvalPrediction) -> dict``.
    ``preprocess_logits_for_metrics(predictions, batch) -> array`` shrinks what is kept per eval batch.
    """

    def __init__(self, model, args: TrainingArguments, train_dataset=None, eval_dataset=None,
                 data_collator=None, compute_metrics=None, preprocess_logits_for_metrics=None, label_names=None):
        self.model = model
        self.args = args
        self.train_dataset = train_dataset
        self.eval_dataset = eval_dataset
        pad_id = getattr(getattr(model, "config", None), "pad_token_id", 0) or 0
        self.data_collator = data_collator or (lambda features: collate(features, pad_token_id=pad_id))
        self.compute_metrics = compute_metrics
        self.preprocess_logits_for_metrics = preprocess_logits_for_metrics
        self.label_names = label_names or ["labels", "next_sentence_label"]
        self.log_history = []
        self._log_started = False  # this Trainer's first log entry starts log.jsonl afresh: runs never mix
        self.global_step = 0
        self.optimizer = None
        self.scheduler = None
        self.best_metrics = None  # the evaluation during training with the best metric_for_best_model
        self._best_state = None   # its parameters (load_best_model_at_end)

    # ------------------------------------------------------------------ set-up
    @property
    def global_batch_size(self) -> int:
        """Examples per micro-batch over all processes: per_device_train_batch_size · world size."""
        return self.args.per_device_train_batch_size * distributed.world_size()

    def steps_per_epoch(self) -> int:
        batches = math.ceil(len(self.train_dataset) / self.global_batch_size)
        return max(batches // self.args.gradient_accumulation_steps, 1)

    def total_steps(self) -> int:
        if self.args.max_steps > 0:
            return self.args.max_steps
        return math.ceil(self.args.num_train_epochs * self.steps_per_epoch())

    def create_optimizer_and_scheduler(self, num_training_steps: int) -> None:
        a = self.args
        groups = param_groups_no_decay(self.model, a.weight_decay)
        groups = [g for g in groups if g["params"]]
        self.optimizer = AdamW(groups, lr=a.learning_rate, betas=(a.adam_beta1, a.adam_beta2), eps=a.adam_epsilon,
                               weight_decay=a.weight_decay)
        warmup = a.warmup_steps if a.warmup_steps > 0 else math.ceil(a.warmup_ratio * num_training_steps)
        self.scheduler = get_scheduler(a.lr_scheduler_type, self.optimizer, num_warmup_steps=warmup,
                                       num_training_steps=num_training_steps)

    def _epoch_order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.args.seed, epoch]).permutation(len(self.train_dataset))

    def _batch(self, dataset, indices) -> dict:
        return self.data_collator([dataset[int(i)] for i in indices])

    # ------------------------------------------------------------------ training
    def train(self, resume_from_checkpoint=None) -> dict:
        """Run the loop; ``resume_from_checkpoint``: a checkpoint dir, or True for the latest in output_dir."""
        from tqdm.auto import tqdm

        a = self.args
        if self.train_dataset is None or len(self.train_dataset) == 0:
            raise ValueError("Trainer.train: train_dataset is empty or missing")
        os.makedirs(a.output_dir, exist_ok=True)
        total = self.total_steps()
        self.create_optimizer_and_scheduler(total)
        minitx.manual_seed(a.seed)
        self.global_step = 0
        if resume_from_checkpoint:
            self._resume(resume_from_checkpoint)
        distributed.broadcast_parameters(self.model)  # every rank starts from rank 0's weights
        self.model.train()
        micro_batch = self.global_batch_size
        batches_per_epoch = self.steps_per_epoch() * a.gradient_accumulation_steps
        bar = tqdm(total=total, initial=self.global_step, desc="train", dynamic_ncols=True,
                   disable=a.disable_tqdm or not distributed.is_main())
        try:
            self._train_loop(total, micro_batch, batches_per_epoch, bar)
        except KeyboardInterrupt:
            bar.close()
            raise self._interrupted() from None
        bar.close()
        if a.load_best_model_at_end and self._best_state is not None:
            self.model.load_state_dict(self._best_state)
        if a.plot and distributed.is_main():
            self.plot_curves()
        return {"global_step": self.global_step, "train_loss": self._mean_logged("loss")}

    def _interrupted(self) -> TrainingInterrupted:
        """Ctrl-C: save a checkpoint of the last finished step (one process only: under MPI the ranks stop at
        different points, so none waits in the checkpoint's barrier)."""
        if distributed.world_size() > 1 or self.global_step == 0:
            return TrainingInterrupted(None)
        return TrainingInterrupted(self.save_checkpoint())

    def _train_loop(self, total: int, micro_batch: int, batches_per_epoch: int, bar) -> None:
        a = self.args
        running_loss, running_count = 0.0, 0
        while self.global_step < total:
            epoch, step_in_epoch = divmod(self.global_step, self.steps_per_epoch())
            if hasattr(self.train_dataset, "set_epoch"):
                self.train_dataset.set_epoch(epoch)
            order = self._epoch_order(epoch)
            first = step_in_epoch * a.gradient_accumulation_steps
            for start in range(first, batches_per_epoch, a.gradient_accumulation_steps):
                loss = self._optimizer_step(order, start, micro_batch)
                running_loss, running_count = running_loss + loss, running_count + 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
                if self.global_step % a.logging_steps == 0 or self.global_step == total:
                    self._log({"loss": running_loss / running_count, "learning_rate": self.scheduler.get_last_lr()[0],
                               "epoch": round(self.global_step / self.steps_per_epoch(), 4)})
                    running_loss, running_count = 0.0, 0
                if a.eval_steps and self.eval_dataset is not None and self.global_step % a.eval_steps == 0:
                    self._keep_if_best(self.evaluate())
                    self.model.train()
                if a.save_steps and self.global_step % a.save_steps == 0:
                    self.save_checkpoint()
                if self.global_step >= total:
                    break

    def _optimizer_step(self, order: np.ndarray, start: int, micro_batch: int) -> float:
        """Accumulate gradients over the micro-batches starting at batch ``start``, then update once.

        Under MPI each rank runs its slice of every global micro-batch; its loss is its share of the global
        mean, so the logged loss is the sum of the shares and the summed gradients are those of one process."""
        a = self.args
        step_loss = 0.0
        for b in range(start, start + a.gradient_accumulation_steps):
            indices = order[b * micro_batch:(b + 1) * micro_batch]
            if len(indices) < distributed.world_size():  # (a last batch too short to give every rank an example)
                continue
            with distributed.global_mean():
                output = self.model(**self._batch(self.train_dataset, distributed.rank_slice(indices)))
            loss = output.loss / a.gradient_accumulation_steps
            value = distributed.all_reduce_sum(loss.item())
            if not math.isfinite(value):
                raise TrainingDiverged(f"loss is {value} at step {self.global_step + 1}; "
                                       "lower the learning rate or check the inputs")
            loss.backward()
            step_loss += value
        distributed.all_reduce_gradients(self.model.parameters())
        if a.max_grad_norm and a.max_grad_norm > 0:
            clip_grad_norm_(self.model.parameters(), a.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad()
        self.global_step += 1
        return step_loss

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, eval_dataset=None) -> dict:
        """Mean loss over the eval set, plus ``compute_metrics`` on the concatenated predictions."""
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if dataset is None or len(dataset) == 0:
            raise ValueError("Trainer.evaluate: no eval_dataset")
        self.model.eval()
        losses, weights, predictions, labels = [], [], [], []
        size = self.args.per_device_eval_batch_size
        with minitx.no_grad():
            for start in range(0, len(dataset), size):
                batch = self._batch(dataset, range(start, min(start + size, len(dataset))))
                output = self.model(**batch)
                if getattr(output, "loss", None) is not None:
                    losses.append(output.loss.item())
                    weights.append(len(batch["input_ids"]))
                if self.compute_metrics is None:  # only the loss is wanted: keep no logits
                    continue
                preds = default_predictions(output)
                if self.preprocess_logits_for_metrics is not None:
                    preds = self.preprocess_logits_for_metrics(preds, batch)
                predictions.append(preds)
                labels.append(tuple(batch[k] for k in self.label_names if k in batch))
        metrics = {"eval_loss": float(np.average(losses, weights=weights))} if losses else {}
        if self.compute_metrics is not None:
            prediction = EvalPrediction(_concat(predictions), _concat(labels))
            metrics.update({f"eval_{k}": v for k, v in self.compute_metrics(prediction).items()})
        self._log(metrics)
        return metrics

    def final_metrics(self) -> dict:
        """The evaluation of the weights the model holds after ``train``: the best evaluation's metrics when
        ``load_best_model_at_end`` restored them (no second evaluation), else a fresh ``evaluate()``."""
        if self.args.load_best_model_at_end and self._best_state is not None:
            return self.best_metrics
        return self.evaluate()

    def _keep_if_best(self, metrics: dict) -> None:
        """Remember an evaluation made during training (and, for load_best_model_at_end, copy the weights)
        when its ``metric_for_best_model`` beats the best so far."""
        a = self.args
        key = a.metric_for_best_model if a.metric_for_best_model.startswith("eval_") else f"eval_{a.metric_for_best_model}"
        if key not in metrics:
            raise KeyError(f"metric_for_best_model={a.metric_for_best_model!r}: the evaluation gave "
                           f"{sorted(metrics)}")
        best = None if self.best_metrics is None else self.best_metrics[key]
        if best is None or (metrics[key] > best if a.greater_is_better else metrics[key] < best):
            self.best_metrics = {"step": self.global_step, **metrics}
            if a.load_best_model_at_end:
                self._best_state = self.model.state_dict()  # (a copy)

    # ------------------------------------------------------------------ logging, plots, checkpoints
    def _log(self, entry: dict) -> None:
        entry = {"step": self.global_step, **{k: float(v) for k, v in entry.items()}}
        self.log_history.append(entry)
        if distributed.is_main():
            self._write_log([entry])

    def _write_log(self, entries: list) -> None:
        """Append to ``output_dir/log.jsonl``; the first write of this Trainer starts the file afresh."""
        os.makedirs(self.args.output_dir, exist_ok=True)
        with open(os.path.join(self.args.output_dir, "log.jsonl"), "a" if self._log_started else "w") as f:
            f.writelines(json.dumps(e) + "\n" for e in entries)
        self._log_started = True

    def _mean_logged(self, key: str) -> float:
        values = [e[key] for e in self.log_history if key in e]
        return float(np.mean(values)) if values else float("nan")

    def plot_curves(self) -> str:
        """Save loss and learning-rate curves (and eval loss) to ``output_dir/curves.png`` (rank 0 only)."""
        from minitx.viz.curves import plot_training_curves

        path = os.path.join(self.args.output_dir, "curves.png")
        if distributed.is_main():
            plot_training_curves(self.log_history, path=path)
        return path

    def save_model(self, directory: str, tokenizer=None) -> str:
        """Save the model (HF layout) and the tokenizer to ``directory``; rank 0 only, the others wait for it."""
        if distributed.is_main():
            self.model.save_pretrained(directory)
            if tokenizer is not None:
                tokenizer.save_pretrained(directory)
        distributed.barrier()
        return directory

    def save_checkpoint(self) -> str:
        """Write ``output_dir/checkpoint-<step>`` (rank 0 only: every rank holds the same weights)."""
        directory = os.path.join(self.args.output_dir, f"checkpoint-{self.global_step}")
        if distributed.is_main():
            state = {"global_step": self.global_step, "log_history": self.log_history, "args": self.args.to_dict()}
            save_checkpoint(directory, self.model, self.optimizer, self.scheduler, state,
                            rng_state=minitx.random.get_rng_state())
        distributed.barrier()  # no rank moves on (or resumes) before the checkpoint exists
        return directory

    def _resume(self, checkpoint) -> None:
        if checkpoint is True:
            checkpoint = latest_checkpoint(self.args.output_dir)
            if checkpoint is None:
                raise FileNotFoundError(f"resume_from_checkpoint=True but {self.args.output_dir!r} has no checkpoint")
        state = load_checkpoint(checkpoint, self.model, self.optimizer, self.scheduler)
        self.global_step = state["global_step"]
        self.log_history = state["log_history"]
        if distributed.is_main():  # the log restarts as the checkpoint's history: what the uninterrupted run had
            self._log_started = False
            self._write_log(self.log_history)
        minitx.random.set_rng_state(state["rng_state"])


def _concat(chunks: list):
    """Concatenate per-batch arrays (or tuples of arrays) along the batch axis, padding ragged sequence axes."""
    if not chunks:
        return None
    if isinstance(chunks[0], tuple):
        return tuple(_concat([c[i] for c in chunks]) for i in range(len(chunks[0])))
    arrays = [np.asarray(c) for c in chunks]
    if arrays[0].ndim >= 2 and len({a.shape[1] for a in arrays}) > 1:
        width = max(a.shape[1] for a in arrays)
        fill = -100 if arrays[0].dtype.kind in "iu" else np.nan
        arrays = [np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2), constant_values=fill)
                  for a in arrays]
    return np.concatenate(arrays, axis=0)
