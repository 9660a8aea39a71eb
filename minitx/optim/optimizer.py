"""The optimizer base class: parameter groups, ``zero_grad``, and checkpointable state.

An optimizer owns a list of *parameter groups*. Each group is a dict ``{"params": [Tensor, ...], "lr": ..., ...}``
holding its own hyper-parameters, so one optimizer can, e.g., apply weight decay to matrices but not to biases
(see ``minitx.optim.param_groups_no_decay``). Passing a plain iterable of Tensors makes a single group.

Per-parameter state (step counts, momentum and moment buffers) lives in ``self.state[param]`` as NumPy arrays.
``state_dict()`` refers to parameters by their position across all groups (0, 1, 2, ...), exactly like torch, so a
checkpoint can be loaded into a fresh optimizer built over a freshly built model.

Updates are done in place on ``param.data`` under ``no_grad``: the optimizer step is not part of the graph.
"""
import copy

import numpy as np

from minitx.tensor import Tensor, no_grad


class Optimizer:
    """Base class. Subclasses set ``defaults`` through ``__init__`` and implement ``step()``."""

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}  # Tensor -> dict of NumPy arrays / ints
        groups = list(params)
        if len(groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        """Add ``{"params": [...], **hyper-parameters}``; missing hyper-parameters take the optimizer's defaults."""
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, got {type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        full_group = {**self.defaults, **group, "params": params}
        self.param_groups.append(full_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of the last backward (they accumulate otherwise)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.data[...] = 0

    def step(self) -> None:
        """One update of every parameter that has a gradient (``_update`` holds each optimizer's rule)."""
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self._update(p, group)

    def _update(self, p, group) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """``{"state": {index: {name: ndarray|int}}, "param_groups": [{hyper-params, "params": [index, ...]}]}``."""
        index_of = {}
        groups = []
        for group in self.param_groups:
            indices = []
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
                indices.append(index_of[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": indices})
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index_of[id(p)]] = copy.deepcopy(self.state[p])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyper-parameters and buffers saved by ``state_dict()`` (the groups must have the same sizes)."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"load_state_dict: the checkpoint has {len(saved_groups)} parameter groups, "
                             f"this optimizer has {len(self.param_groups)}")
        for saved, group in zip(saved_groups, self.param_groups):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"load_state_dict: a parameter group has {len(saved['params'])} parameters in the "
                                 f"checkpoint but {len(group['params'])} here")
        self.state = {}
        for saved, group in zip(saved_groups, self.param_groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
            for index, p in zip(saved["params"], group["params"]):
                entry = state_dict["state"].get(index, state_dict["state"].get(str(index)))
                if entry is not None:
                    self.state[p] = {k: (np.array(v, dtype=p.data.dtype) if isinstance(v, np.ndarray) else v)
                                     for k, v in entry.items()}
