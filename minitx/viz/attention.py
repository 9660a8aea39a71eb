"""Attention heatmaps: one panel per (layer, head), queries down the rows, keys across the columns.

Row i of a panel is the softmax distribution softmax(q_i Kᵀ / √d) that query token i spreads over the key
tokens (Vaswani et al., 2017, §3.2.1), so each row sums to 1. Classic patterns to look for (Clark et al.,
2019, "What does BERT look at?"): heads attending to the previous/next token, to [SEP] or [CLS], to
themselves, or broadly ("bag of words").
"""
from __future__ import annotations

import numpy as np

from minitx.tensor import data_of
from minitx.viz.figure import new_figure, save_figure


def _as_array(x) -> np.ndarray:
    return np.asarray(data_of(x), dtype=np.float64)


def attention_stack(attentions, batch_index: int = 0) -> np.ndarray:
    """Normalize attention probabilities to one array of shape (layers, heads, Lq, Lk).

    Accepts an array (layers, heads, Lq, Lk), or a list with one entry per layer of shape (B, H, Lq, Lk)
    (``batch_index`` picks the sentence; the HF ``output_attentions`` format) or (H, Lq, Lk).
    """
    if isinstance(attentions, (list, tuple)):
        layers = []
        for number, layer in enumerate(attentions):
            layer = _as_array(layer)
            if layer.ndim == 4:
                if not 0 <= batch_index < layer.shape[0]:
                    raise IndexError(f"attention_stack: batch_index {batch_index} out of range for layer {number} "
                                     f"of shape {layer.shape}")
                layer = layer[batch_index]
            if layer.ndim != 3:
                raise ValueError(f"attention_stack: layer {number} must be (B, H, Lq, Lk) or (H, Lq, Lk), "
                                 f"got shape {layer.shape}")
            layers.append(layer)
        shapes = {layer.shape for layer in layers}
        if len(shapes) != 1:
            raise ValueError(f"attention_stack: layers have different shapes {sorted(shapes)}")
        return np.stack(layers)
    stack = _as_array(attentions)
    if stack.ndim != 4:
        raise ValueError(f"attention_stack: expected (layers, heads, Lq, Lk), got shape {stack.shape}")
    return stack


def plot_attention(attentions, tokens, key_tokens=None, layers=None, heads=None, batch_index: int = 0,
                   cmap: str = "viridis", panel_size: float = 2.2, path=None):
    """Grid of heatmaps: a row of panels per layer, a column per head; tokens label both axes.

    ``tokens``: the query tokens (rows); ``key_tokens``: the key tokens (columns), default ``tokens``
    (self-attention). ``layers`` / ``heads``: indices to show (default all). Returns the Figure and
    writes it to ``path`` when given. Colors share one scale, 0 to the largest weight shown.
    """
    stack = attention_stack(attentions, batch_index)
    key_tokens = list(tokens if key_tokens is None else key_tokens)
    tokens = list(tokens)
    if stack.shape[2:] != (len(tokens), len(key_tokens)):
        raise ValueError(f"plot_attention: attention maps are {stack.shape[2:]} (Lq, Lk) but there are "
                         f"{len(tokens)} query and {len(key_tokens)} key tokens")
    layers = list(range(stack.shape[0])) if layers is None else list(layers)
    heads = list(range(stack.shape[1])) if heads is None else list(heads)
    shown = stack[np.ix_(layers, heads)]
    figure = new_figure(panel_size * len(heads) + 1.0, panel_size * len(layers) + 0.4)
    axes = figure.subplots(len(layers), len(heads), squeeze=False)
    vmax = float(shown.max()) if shown.size else 1.0
    for row, layer in enumerate(layers):
        for col, head in enumerate(heads):
            ax = axes[row, col]
            image = ax.imshow(shown[row, col], cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto")
            ax.set_xticks(range(len(key_tokens)), key_tokens, rotation=90, fontsize=7)
            ax.set_yticks(range(len(tokens)), tokens, fontsize=7)
            ax.tick_params(labelbottom=row == len(layers) - 1, labelleft=col == 0, length=0)
            ax.set_title(f"layer {layer} · head {head}", fontsize=8)
    figure.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
    if path is not None:
        save_figure(figure, path)
    return figure
