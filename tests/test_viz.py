"""Visualizations: each plot writes a real PNG, and the data behind it is checked (the graph's ops and edges,
the heatmaps' values and tick labels, the smoothing formula, the roofline maths)."""
import json
import math
import struct

import numpy as np
import pytest

import minitx as mx
from minitx.nn.attention import MultiHeadAttention
from minitx.nn.positional import sinusoidal_table
from minitx.viz import (KernelPoint, MachinePeak, attention_stack, measure_peak, plot_attention, plot_graph,
                        plot_positional_encoding, plot_roofline, plot_training_curves, read_benchmark_points,
                        read_log, smooth, to_dot, trace)
from minitx.viz.graph import layered_layout
from minitx.viz.roofline import attainable, matmul_intensity

pytestmark = pytest.mark.viz

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_kb=5):
    """A valid, non-trivial PNG: the magic bytes, an IHDR chunk with a sane size, and some KB of pixels."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert 100 < width < 5000 and 100 < height < 5000
    assert len(data) > min_kb * 1024 and data.rstrip(b"\x00")[-8:-4] == b"IEND"
    return width, height


# ---------------------------------------------------------------- attention heatmaps
@pytest.mark.hw3_attention
def test_attention_heatmaps_from_a_real_multi_head_attention(tmp_path):
    mx.manual_seed(0)
    tokens = ["[CLS]", "the", "cat", "sat", "[SEP]"]
    layers = [MultiHeadAttention(16, 2) for _ in range(3)]
    x = mx.randn(2, len(tokens), 16)
    weights = [layer(x, need_weights=True).weights for layer in layers]  # per layer (B, H, L, L) Tensors
    stack = attention_stack(weights, batch_index=1)
    assert stack.shape == (3, 2, 5, 5)
    np.testing.assert_allclose(stack[2, 1], weights[2].numpy()[1, 1], rtol=1e-6)
    np.testing.assert_allclose(stack.sum(-1), 1.0, rtol=1e-5)  # rows are distributions

    figure = plot_attention(weights, tokens, batch_index=1, path=tmp_path / "attention.png")
    panels = [ax for ax in figure.axes if ax.images]
    assert len(panels) == 3 * 2
    assert [t.get_text() for t in panels[0].get_yticklabels()] == tokens
    assert [t.get_text() for t in panels[-1].get_xticklabels()] == tokens
    np.testing.assert_allclose(panels[-1].images[0].get_array(), stack[2, 1])
    assert panels[3].get_title() == "layer 1 · head 1"
    assert_png(tmp_path / "attention.png")


def test_attention_selection_and_errors(tmp_path):
    probs = np.random.default_rng(0).dirichlet(np.ones(4), size=(4, 3, 4))  # (layers, heads, L, L)
    figure = plot_attention(probs, list("abcd"), layers=[0, 3], heads=[2])
    panels = [ax for ax in figure.axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["layer 0 · head 2", "layer 3 · head 2"]
    np.testing.assert_allclose(panels[1].images[0].get_array(), probs[3, 2])
    with pytest.raises(ValueError, match=r"\(4, 4\).*3 query and 3 key tokens"):
        plot_attention(probs, list("abc"))
    with pytest.raises(ValueError, match="different shapes"):
        attention_stack([probs[0], probs[1, :, :3, :3]])


# ---------------------------------------------------------------- the autograd graph
def test_graph_dot_has_every_op_and_edge(tmp_path):
    x = mx.randn(3, 4).requires_grad_()
    w = mx.randn(4, 2).requires_grad_()
    b = mx.zeros(2, requires_grad=True)
    loss = ((x @ w + b).tanh() * 2.0).sum()
    nodes, edges = trace(loss, {"x": x, "w": w, "b": b})
    ops = [n.label.split("\n")[0] for n in nodes if n.kind == "op"]
    assert ops == ["MatMul", "Add", "Tanh", "Mul", "Sum"]  # topological: inputs before their consumers
    assert len(edges) == 2 + 2 + 1 + 2 + 1
    kinds = sorted(n.label.split("\n")[0] for n in nodes if n.kind != "op")
    assert kinds == ["2", "b", "w", "x"]

    dot = to_dot(loss, {"x": x, "w": w, "b": b})
    assert dot.startswith("digraph autograd {") and dot.rstrip().endswith("}")
    for op in ops:
        assert f'label="{op}\\n' in dot
    assert 'label="MatMul\\n(3, 2)"' in dot and 'label="x\\n(3, 4)"' in dot and 'label="b\\n(2,)"' in dot
    assert dot.count(" -> ") == len(edges)

    position = layered_layout(nodes, edges)
    layer = {n.label.split("\n")[0]: position[n.id][0] for n in nodes}
    assert layer["MatMul"] < layer["Add"] < layer["Tanh"] < layer["Mul"] < layer["Sum"]
    assert layer["2"] == layer["Mul"] - 1 and layer["b"] == layer["Add"] - 1  # leaves sit next to their use

    figure = plot_graph(loss, {"x": x, "w": w, "b": b}, path=tmp_path / "graph.png")
    texts = [t.get_text() for t in figure.axes[0].texts if t.get_text()]
    assert sorted(texts) == sorted(n.label for n in nodes)
    assert_png(tmp_path / "graph.png")


def test_graph_repeated_input_and_deep_chain():
    x = mx.randn(3).requires_grad_()
    y = x * x + x  # x feeds Mul twice and Add once
    nodes, edges = trace(y)
    x_id = next(n.id for n in nodes if n.kind == "leaf")
    assert sum(source == x_id for source, _ in edges) == 3
    assert to_dot(y).count(f"{x_id} -> ") == 3

    deep = x
    for _ in range(3000):  # deeper than Python's recursion limit
        deep = deep * 1.0001
    nodes, edges = trace(deep)
    assert len([n for n in nodes if n.kind == "op"]) == 3000 and len(edges) == 6000
    with pytest.raises(TypeError, match="minitx Tensor"):
        trace(np.ones(3))


# ---------------------------------------------------------------- training curves
def test_smooth_is_a_debiased_ema():
    values = np.array([4.0, 2.0, 3.0, 1.0])
    w = 0.6
    m, expected = 0.0, []
    for t, v in enumerate(values, start=1):
        m = w * m + (1 - w) * v
        expected.append(m / (1 - w ** t))
    np.testing.assert_allclose(smooth(values, w), expected)
    assert smooth(values, w)[0] == values[0]  # debiased: no pull toward zero
    np.testing.assert_array_equal(smooth(values, 0.0), values)
    with pytest.raises(ValueError):
        smooth(values, 1.0)


def test_training_curves_from_jsonl(tmp_path):
    log = tmp_path / "log.jsonl"
    lines = []
    for step in range(1, 201):
        record = {"step": step, "loss": 3.0 * math.exp(-step / 50) + 0.05 * math.sin(step), "lr": 1e-3 * min(1.0, step / 20)}
        if step % 50 == 0:
            record["eval_loss"] = 3.0 * math.exp(-step / 60)
        lines.append(json.dumps(record))
    log.write_text("\n".join(lines) + "\n\n")
    records = read_log(log)
    assert len(records) == 200

    figure = plot_training_curves(log, smoothing=0.9, path=tmp_path / "curves.png")
    loss_ax, lr_ax = figure.axes
    lines_by_label = {line.get_label(): line for line in loss_ax.lines}
    assert set(lines_by_label) >= {"loss (EMA 0.9)", "eval_loss"}  # the sparse eval series is not smoothed
    smoothed = lines_by_label["loss (EMA 0.9)"]
    np.testing.assert_allclose(smoothed.get_ydata(), smooth([r["loss"] for r in records], 0.9))
    np.testing.assert_array_equal(lines_by_label["eval_loss"].get_xdata(), [50, 100, 150, 200])
    assert lines_by_label["eval_loss"].get_linestyle() == "None"  # evaluations are points, not joined
    np.testing.assert_allclose(lines_by_label["eval_loss"].get_ydata(), [r["eval_loss"] for r in records[49::50]])
    np.testing.assert_allclose(lr_ax.lines[0].get_ydata(), [r["lr"] for r in records])
    assert lr_ax.get_ylabel() == "learning rate"
    assert_png(tmp_path / "curves.png")

    log.write_text('{"step": 1, "loss": 1.0}\nnot json\n')
    with pytest.raises(ValueError, match="log.jsonl:2"):
        read_log(log)
    with pytest.raises(ValueError, match="acc"):
        plot_training_curves([{"step": 1, "loss": 1.0}], metrics=["acc"])


# ---------------------------------------------------------------- positional encodings
def test_positional_encoding_plot(tmp_path):
    table = sinusoidal_table(64, 32)
    figure = plot_positional_encoding(table, dims=[0, 5], path=tmp_path / "positional.png")
    heat, curves, similarity = figure.axes[0], figure.axes[2], figure.axes[3]
    np.testing.assert_allclose(heat.images[0].get_array(), table)
    np.testing.assert_allclose(curves.lines[1].get_ydata(), table[:, 5])
    gram = similarity.images[0].get_array()
    np.testing.assert_allclose(np.diag(gram), 16.0, rtol=1e-5)  # sin² + cos² = 1 in each of 16 pairs
    assert_png(tmp_path / "positional.png")
    with pytest.raises(ValueError, match="positions, dimensions"):
        plot_positional_encoding(np.ones(5))


# ---------------------------------------------------------------- roofline
def test_roofline_maths_and_benchmark_files(tmp_path):
    assert matmul_intensity(1024, 1024, 1024) == pytest.approx(2 * 1024 ** 3 / (4 * 3 * 1024 ** 2))
    peak = MachinePeak(gflops=100.0, bandwidth_gbs=20.0)
    assert peak.ridge == 5.0
    np.testing.assert_allclose(attainable([0.5, 5.0, 50.0], peak), [10.0, 100.0, 100.0])

    results = tmp_path / "results"
    results.mkdir()
    (results / "custom.json").write_text(json.dumps({"machine": "test", "results": [
        {"name": "mine", "m": 512, "n": 512, "k": 512, "gflops": 80.0},
        {"name": "mine", "intensity": 40.0, "gflops": 90.0, "size": 1024},
        {"kernel": "layer_norm", "flops": 8e6, "bytes": 8e6, "gflops": 12.0},
        {"name": "incomplete", "gflops": 1.0}]}))
    # the layouts benchmarks/bench_matmul.py, bench_fused.py and bench_attention.py write
    (results / "matmul.json").write_text(json.dumps({"threads": 2, "gflops_square": {"256": {"v3": 60.0, "v0": None}},
                                                     "gflops_transformer": {"128x384x1536": {"numpy": 20.0}}}))
    (results / "fused.json").write_text(json.dumps({"results": {"softmax_fwd 256x768": {"GB_per_s": 8.0}}}))
    (results / "attention.json").write_text(json.dumps({"shape": "(1, 8, L, 64)",
                                                        "ms": {"256": {"minitx_fwd": 2.0, "minitx_bwd": 5.0}}}))
    points = read_benchmark_points(results)
    attention_flops = 4.0 * 8 * 256 * 256 * 64
    assert points == [
        KernelPoint("attention minitx L=256", attention_flops / (16 * 8 * 256 * 64), attention_flops / 2e-3 / 1e9,
                    "attention minitx"),
        KernelPoint("mine", matmul_intensity(512, 512, 512), 80.0, "mine"),
        KernelPoint("mine 1024", 40.0, 90.0, "mine"),
        KernelPoint("layer_norm", 1.0, 12.0, "layer_norm"),
        KernelPoint("softmax_fwd 256x768", 5 / 8, 8.0 * 5 / 8, "softmax_fwd"),  # 5 FLOP and 8 bytes per element
        KernelPoint("matmul v3 256", matmul_intensity(256, 256, 256), 60.0, "matmul v3"),
        KernelPoint("matmul numpy 128x384x1536", matmul_intensity(128, 384, 1536), 20.0, "matmul numpy")]

    figure = plot_roofline(peak=peak, results_dir=results, path=tmp_path / "roofline.png")
    ax = figure.axes[0]
    roof = ax.lines[0]
    np.testing.assert_allclose(roof.get_ydata(), attainable(roof.get_xdata(), peak))
    assert [c.get_label() for c in ax.collections] == ["attention minitx", "mine", "layer_norm", "softmax_fwd",
                                                        "matmul v3", "matmul numpy"]
    np.testing.assert_allclose(ax.collections[1].get_offsets(), [[matmul_intensity(512, 512, 512), 80.0], [40.0, 90.0]])
    assert_png(tmp_path / "roofline.png")


def test_measure_peak_is_positive_and_consistent():
    peak = measure_peak(matmul_size=256, copy_megabytes=8, repeats=2)
    assert peak.gflops > 0.1 and peak.bandwidth_gbs > 0.1
    assert peak.ridge == pytest.approx(peak.gflops / peak.bandwidth_gbs)


def test_roofline_reads_the_repository_benchmark_results():
    from minitx.viz.roofline import default_results_dir

    if not list(default_results_dir().glob("*.json")):
        pytest.skip("no benchmarks/results/*.json yet (run benchmarks/run_all.py)")
    points = read_benchmark_points()
    assert points, "benchmarks/results has JSON files but none in a layout read_benchmark_points understands"
    assert all(p.intensity > 0 and p.gflops > 0 for p in points)
    assert any(p.group.startswith("matmul") for p in points)
