"""Evaluation metrics for GLUE-style tasks, in NumPy.

accuracy        mean(pred == label)
f1 (binary)     2·P·R / (P + R), P = TP/(TP+FP), R = TP/(TP+FN), positive class 1 (0 when undefined)
matthews        (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))  (Matthews 1975; 0 when undefined),
                the CoLA metric (Warstadt et al. 2019)
pearson         cov(x, y) / (σx σy)
spearman        Pearson correlation of the ranks, ties given their average rank (Spearman 1904)

:func:`glue_compute_metrics` returns the dict Hugging Face's ``glue_compute_metrics`` returns per task.
"""
import numpy as np


def _pair(preds, labels) -> tuple[np.ndarray, np.ndarray]:
    preds, labels = np.asarray(preds).ravel(), np.asarray(labels).ravel()
    if preds.shape != labels.shape:
        raise ValueError(f"preds has {preds.size} values but labels has {labels.size}")
    if preds.size == 0:
        raise ValueError("metrics need at least one prediction")
    return preds, labels


def accuracy(preds, labels) -> float:
    preds, labels = _pair(preds, labels)
    return float(np.mean(preds == labels))


def majority_baseline(labels) -> float:
    """Accuracy of always predicting the most frequent class: the bar a classifier must clear."""
    labels = np.asarray(labels).astype(np.int64)
    return float(np.mean(labels == np.bincount(labels).argmax()))


def confusion_counts(preds, labels, positive=1) -> tuple[int, int, int, int]:
    """(TP, FP, FN, TN) for a binary task with the given positive class."""
    preds, labels = _pair(preds, labels)
    p, t = preds == positive, labels == positive
    return int(np.sum(p & t)), int(np.sum(p & ~t)), int(np.sum(~p & t)), int(np.sum(~p & ~t))


def f1_score(preds, labels, positive=1) -> float:
    """Binary F1 = 2TP / (2TP + FP + FN) (same as 2PR/(P+R)); 0.0 when there is no positive anywhere."""
    tp, fp, fn, _ = confusion_counts(preds, labels, positive)
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom else 0.0


def matthews_corrcoef(preds, labels) -> float:
    """Matthews correlation for binary labels; 0.0 when a marginal is empty (as scikit-learn)."""
    tp, fp, fn, tn = confusion_counts(preds, labels)
    denom = np.sqrt(float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return float((tp * tn - fp * fn) / denom) if denom else 0.0


def pearson(x, y) -> float:
    """Pearson's r = Σ(x−x̄)(y−ȳ) / sqrt(Σ(x−x̄)² Σ(y−ȳ)²), in float64; nan if either input is constant."""
    x, y = _pair(x, y)
    dx, dy = x.astype(np.float64) - x.mean(), y.astype(np.float64) - y.mean()
    denom = np.sqrt(np.sum(dx * dx) * np.sum(dy * dy))
    return float(np.sum(dx * dy) / denom) if denom else float("nan")


def rankdata(x) -> np.ndarray:
    """Ranks 1..n; tied values share the average of the ranks they span (scipy's 'average' method)."""
    x = np.asarray(x).ravel()
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    # Start index of each run of equal values in sorted order.
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], x.size]                 # one past each run's end
    avg_rank = (starts + 1 + ends) / 2.0              # mean of ranks starts+1 .. ends
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(avg_rank, ends - starts)
    return ranks


def spearman(x, y) -> float:
    """Spearman's ρ = Pearson correlation of the (average-tie) ranks."""
    x, y = _pair(x, y)
    return pearson(rankdata(x), rankdata(y))


def glue_compute_metrics(task: str, preds, labels) -> dict:
    """The per-task GLUE metrics, with the key names of Hugging Face's ``glue_compute_metrics``:
    cola -> mcc; sst2 -> acc; mrpc -> acc, f1, acc_and_f1; stsb -> pearson, spearmanr, corr."""
    task = task.lower().replace("-", "")
    if task == "cola":
        return {"mcc": matthews_corrcoef(preds, labels)}
    if task == "sst2":
        return {"acc": accuracy(preds, labels)}
    if task == "mrpc":
        acc, f1 = accuracy(preds, labels), f1_score(preds, labels)
        return {"acc": acc, "f1": f1, "acc_and_f1": (acc + f1) / 2}
    if task == "stsb":
        r, rho = pearson(preds, labels), spearman(preds, labels)
        return {"pearson": r, "spearmanr": rho, "corr": (r + rho) / 2}
    raise ValueError(f"glue_compute_metrics: unknown task {task!r}; known: cola, sst2, mrpc, stsb")
