"""Draw the autograd graph of an expression: what ``loss.backward()`` walks, made visible.

Each op application is a ``Node`` on its output tensor (``t._node``: ``.fn`` the Function class, ``.parents``
the input tensors, None for non-tensor inputs); see minitx/autograd.py. ``trace`` walks those links from the
output back to the leaves, then ``to_dot`` writes Graphviz DOT text and ``plot_graph`` draws the same graph
with matplotlib in a layered layout (Sugiyama-style: a layer per longest path from the inputs, nodes ordered
inside a layer by the mean position of their inputs), so no system Graphviz is needed.

Data flows left to right: leaves (inputs and parameters) on the left, the output on the right; backward
runs the arrows in reverse.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minitx.tensor import Tensor
from minitx.viz.figure import new_figure, save_figure

_STYLE = {  # kind -> (DOT shape, fill color)
    "op": ("box", "#cfe2f3"),
    "leaf": ("ellipse", "#d9ead3"),       # requires_grad=True: gets a .grad
    "const": ("ellipse", "#eeeeee"),      # a constant input: no gradient
}


@dataclass(frozen=True)
class GraphNode:
    """A drawn node: ``id`` (unique), ``label`` (op name or tensor name, and the shape), ``kind`` in _STYLE."""

    id: str
    label: str
    kind: str


def _shape(t: Tensor) -> str:
    return "(" + ", ".join(str(n) for n in t.shape) + ("," if t.ndim == 1 else "") + ")"


def trace(output: Tensor, names=None) -> tuple:
    """The graph behind ``output``: ``(nodes, edges)`` with nodes in topological order (inputs first).

    An op node stands for its output tensor; a leaf node for a tensor with no ``_node`` (an input, a
    parameter or a constant). ``edges`` is a list of ``(source id, op id)``, one per tensor input of
    each op, so ``x * x`` gives two edges from x. ``names``: ``{"x": x, ...}`` labels tensors by name.
    Iterative (an explicit stack), so deep graphs do not hit Python's recursion limit.
    """
    if not isinstance(output, Tensor):
        raise TypeError(f"trace: expected a minitx Tensor, got {type(output).__name__}")
    label_of = {id(t): name for name, t in (names or {}).items()}
    keys = {}  # id(tensor) -> "n0", "n1", ... in discovery order

    def key_of(tensor):
        return keys.setdefault(id(tensor), f"n{len(keys)}")

    nodes, edges, order = {}, [], []
    stack = [(output, False)]
    while stack:
        tensor, expanded = stack.pop()
        key = key_of(tensor)
        if expanded:
            order.append(key)
            continue
        if key in nodes:
            continue
        name = label_of.get(id(tensor))
        if tensor._node is None:
            kind = "leaf" if tensor.requires_grad else "const"
            if name is None and kind == "const" and tensor.data.size == 1:
                name = f"{tensor.data.item():g}"
            nodes[key] = GraphNode(key, f"{name or kind}\n{_shape(tensor)}", kind)
            order.append(key)
            continue
        op = tensor._node.fn.__name__ + (f" → {name}" if name else "")
        nodes[key] = GraphNode(key, f"{op}\n{_shape(tensor)}", "op")
        parents = [p for p in tensor._node.parents if p is not None]
        edges += [(key_of(parent), key) for parent in parents]
        stack.append((tensor, True))  # emitted after all its parents: a post-order, i.e. topological
        stack += [(parent, False) for parent in reversed(parents)]
    return [nodes[key] for key in order], edges


def to_dot(output: Tensor, names=None) -> str:
    """Graphviz DOT text of the graph (render with ``dot -Tpng graph.dot -o graph.png`` where installed)."""
    nodes, edges = trace(output, names)
    lines = ["digraph autograd {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10, style=filled];']
    for node in nodes:
        shape, color = _STYLE[node.kind]
        label = node.label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append(f'  {node.id} [label="{label}", shape={shape}, fillcolor="{color}"];')
    lines += [f"  {source} -> {target};" for source, target in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def layered_layout(nodes, edges) -> dict:
    """``{id: (layer, slot)}``: an op's layer is the longest path to it from a leaf, a leaf sits just before
    its first consumer, and inside a layer nodes are ordered by the mean slot of their inputs."""
    inputs = {node.id: [] for node in nodes}
    consumers = {node.id: [] for node in nodes}
    for source, target in edges:
        inputs[target].append(source)
        consumers[source].append(target)
    layer = {}
    for node in nodes:  # topological order: every input already has its layer
        layer[node.id] = 1 + max((layer[s] for s in inputs[node.id]), default=-1)
    for node in nodes:
        if not inputs[node.id] and consumers[node.id]:
            layer[node.id] = min(layer[c] for c in consumers[node.id]) - 1
    slot, position = {}, {}
    for depth in range(max(layer.values(), default=-1) + 1):
        members = [node.id for node in nodes if layer[node.id] == depth]
        mean_input = {m: np.mean([slot[s] for s in inputs[m]]) if inputs[m] else i for i, m in enumerate(members)}
        for i, member in enumerate(sorted(members, key=lambda m: mean_input[m])):
            slot[member] = i
            position[member] = (depth, i)
    return position


def _curvature(edges, position) -> list:
    """Arc curvature per edge: straight for a single edge to the next layer; repeated edges (``x * x``) and
    edges that skip layers bend, alternately up and down, so they do not hide each other."""
    seen, bends = {}, []
    for source, target in edges:
        repeat = seen.get((source, target), 0)
        seen[(source, target)] = repeat + 1
        skips = position[target][0] - position[source][0] > 1
        bend = 0.3 * (repeat + skips)
        bends.append(-bend if repeat % 2 else bend)
    return bends


def plot_graph(output: Tensor, names=None, path=None):
    """The graph drawn with matplotlib: op boxes (blue), gradient leaves (green), constants (grey)."""
    nodes, edges = trace(output, names)
    position = layered_layout(nodes, edges)
    columns = max(p[0] for p in position.values()) + 1
    rows = max(p[1] for p in position.values()) + 1
    figure = new_figure(max(4.0, 1.9 * columns), max(2.5, 1.0 * rows + 0.6))
    ax = figure.add_subplot()
    xy = {key: (layer, -(slot - (rows - 1) / 2)) for key, (layer, slot) in position.items()}
    for (source, target), bend in zip(edges, _curvature(edges, position)):
        ax.annotate("", xy=xy[target], xytext=xy[source],
                    arrowprops=dict(arrowstyle="-|>", color="#555555", shrinkA=22, shrinkB=22, lw=1.0,
                                    connectionstyle=f"arc3,rad={bend}"))
    for node in nodes:
        shape, color = _STYLE[node.kind]
        ax.text(*xy[node.id], node.label, ha="center", va="center", fontsize=8,
                bbox=dict(boxstyle="square,pad=0.4" if shape == "box" else "round,pad=0.4",
                          facecolor=color, edgecolor="#333333"))
    ax.set_xlim(-0.6, columns - 0.4)
    ax.set_ylim(-(rows - 1) / 2 - 0.6, (rows - 1) / 2 + 0.6)
    ax.set_axis_off()
    if path is not None:
        save_figure(figure, path)
    return figure
