"""Adam (Kingma & Ba 2015, Algorithm 1) and AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay").

At step t, with gradient g, moments m and v, β1, β2, ε and learning rate η:

    m <- β1 m + (1 - β1) g                  (first moment: a running mean of g)
    v <- β2 v + (1 - β2) g²                 (second moment: a running mean of g²)
    m̂ = m / (1 - β1^t),  v̂ = v / (1 - β2^t)  (bias correction: m, v start at 0)
    θ <- θ - η m̂ / (sqrt(v̂) + ε)

Weight decay λ is where the two differ:
- Adam adds it to the gradient (L2 regularisation): g <- g + λ θ, so it is rescaled by 1/sqrt(v̂) like g;
- AdamW decays the weights directly, *decoupled* from the adaptive step: θ <- θ (1 - η λ) before the update.

``amsgrad=True`` (Reddi et al. 2018) divides by the running maximum of v̂ instead of v̂.
The code follows torch's arithmetic order, so 10 steps match torch to float32 rounding. The update itself is one
kernel, ``adamw_step`` (minitx/backends: the NumPy reference or its fused C++ twin, csrc/optim/adamw.cpp).
"""
import numpy as np

from minitx.backends import kernel
from minitx.optim.optimizer import Optimizer


class Adam(Optimizer):
    decoupled_weight_decay = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: lr, eps and weight_decay must be >= 0, "
                             f"got {lr}, {eps}, {weight_decay}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad))

    def _update(self, p, group) -> None:
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if p not in self.state:
            self.state[p] = {"step": 0, "exp_avg": np.zeros_like(p.data), "exp_avg_sq": np.zeros_like(p.data)}
        state = self.state[p]
        state["step"] += 1
        v_max = state.setdefault("max_exp_avg_sq", np.zeros_like(p.data)) if group["amsgrad"] else None
        arrays = (p.data, p.grad.data, state["exp_avg"], state["exp_avg_sq"], v_max)
        # one fused pass in place (C++), or the NumPy reference: the maths is numpy_ref.adamw_step
        kernel("adamw_step", *arrays)(*arrays, lr, beta1, beta2, eps, wd, state["step"],
                                      decoupled_weight_decay=self.decoupled_weight_decay)


class AdamW(Adam):
    """Adam with decoupled weight decay: θ <- θ (1 - η λ) then the Adam step (default λ = 0.01, as in torch)."""

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, amsgrad: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
