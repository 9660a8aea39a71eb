"""Plot a positional-encoding matrix (positions × dimensions), e.g. the sinusoidal table of Vaswani §3.5.

Left: the (L, D) matrix as a heatmap; early dimensions oscillate fast, late ones slowly (wavelengths form
a geometric progression from 2π to 10000·2π). Right: a few dimensions as curves over the positions, and
below, the dot product PE(p)·PE(q) for all pairs, which depends (nearly) only on |p − q|: why the model
can read relative positions from it.
"""
from __future__ import annotations

import numpy as np

from minitx.nn.positional import sinusoidal_table
from minitx.tensor import data_of
from minitx.viz.figure import new_figure, save_figure


def plot_positional_encoding(table=None, max_len: int = 128, d_model: int = 64, dims=None,
                             title: str = "sinusoidal positional encoding", path=None):
    """Heatmap of ``table`` (L, D) (default: ``sinusoidal_table(max_len, d_model)``), some of its dimensions
    as curves (``dims``, default four spread over D), and the position-similarity matrix PE PEᵀ."""
    if table is None:
        table = sinusoidal_table(max_len, d_model)
    table = np.asarray(data_of(table), dtype=np.float64)
    if table.ndim != 2:
        raise ValueError(f"plot_positional_encoding: expected a (positions, dimensions) matrix, got shape {table.shape}")
    length, depth = table.shape
    dims = sorted({0, 1, depth // 4, depth // 2} & set(range(depth))) if dims is None else list(dims)

    figure = new_figure(11.0, 4.5)
    grid = figure.add_gridspec(2, 2, width_ratios=(1.4, 1.0))
    heat = figure.add_subplot(grid[:, 0])
    image = heat.imshow(table, aspect="auto", cmap="RdBu_r", vmin=-np.abs(table).max(), vmax=np.abs(table).max(),
                        interpolation="nearest")
    heat.set_xlabel("dimension")
    heat.set_ylabel("position")
    heat.set_title(title, fontsize=10)
    figure.colorbar(image, ax=heat, shrink=0.8)

    curves = figure.add_subplot(grid[0, 1])
    for dim in dims:
        curves.plot(np.arange(length), table[:, dim], lw=1.2, label=f"dim {dim}")
    curves.set_xlabel("position")
    curves.legend(fontsize=7, ncol=2)

    similarity = figure.add_subplot(grid[1, 1])
    similarity.imshow(table @ table.T, cmap="viridis", interpolation="nearest")
    similarity.set_title("PE(p) · PE(q)", fontsize=9)
    similarity.set_xlabel("position q")
    similarity.set_ylabel("position p")
    if path is not None:
        save_figure(figure, path)
    return figure
