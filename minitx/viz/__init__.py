"""Pictures of what minitx computes; every function returns a matplotlib Figure and can save a PNG.

    plot_attention(attentions, tokens)        attention heatmaps per layer and head     (attention.py)
    to_dot(loss) / plot_graph(loss)           the autograd graph behind a tensor         (graph.py)
    plot_training_curves(log)                 losses and learning rate against the step  (curves.py)
    plot_positional_encoding(table)           a positional-encoding matrix               (positional.py)
    plot_roofline(points)                     kernels against the machine's roofs        (roofline.py)

No pyplot state is touched (see figure.py), so they run headless and leave a notebook's backend alone.
"""
from minitx.viz.attention import attention_stack, plot_attention
from minitx.viz.curves import plot_training_curves, read_log, smooth
from minitx.viz.figure import save_figure
from minitx.viz.graph import plot_graph, to_dot, trace
from minitx.viz.positional import plot_positional_encoding
from minitx.viz.roofline import KernelPoint, MachinePeak, measure_peak, plot_roofline, read_benchmark_points

__all__ = ["KernelPoint", "MachinePeak", "attention_stack", "measure_peak", "plot_attention", "plot_graph",
           "plot_positional_encoding", "plot_roofline", "plot_training_curves", "read_benchmark_points",
           "read_log", "save_figure", "smooth", "to_dot", "trace"]
