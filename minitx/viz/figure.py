"""Figures without pyplot: every plot in minitx.viz is a ``matplotlib.figure.Figure`` drawn by Agg.

No global backend switch and no ``plt.show()``: library code must work on a headless CI machine and must
not change the backend of a user's notebook. A returned Figure shows itself in Jupyter; ``save_figure``
writes it as PNG (or any format matplotlib knows from the suffix).
"""
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def new_figure(width: float, height: float) -> Figure:
    """An empty Figure of ``width`` x ``height`` inches with an Agg canvas attached."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path, dpi: int = 110) -> Path:
    """Write ``figure`` to ``path`` (parent folders are created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    return path
