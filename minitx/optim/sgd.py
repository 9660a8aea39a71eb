"""Stochastic gradient descent with momentum (Polyak 1964) and Nesterov momentum (Sutskever et al. 2013).

With gradient g, weight decay λ, momentum μ, dampening τ and learning rate η (torch's formulation):

    g <- g + λ θ                           (L2 weight decay, coupled: it goes through the momentum)
    b <- g                  on the first step,  b <- μ b + (1 - τ) g  afterwards
    d <- g + μ b  (nesterov)   or   d <- b
    θ <- θ - η d

With μ = 0 this is plain SGD: θ <- θ - η g.
"""
import numpy as np

from minitx.optim.optimizer import Optimizer


class SGD(Optimizer):
    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum and weight_decay must be >= 0, got {lr}, {momentum}, {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, p, group) -> None:
        lr, mu, tau, wd = group["lr"], group["momentum"], group["dampening"], group["weight_decay"]
        d = p.grad.data
        if wd != 0:
            d = d + wd * p.data
        if mu != 0:
            state = self.state.setdefault(p, {})
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = np.array(d, dtype=p.data.dtype)
            else:
                buf = state["momentum_buffer"]
                buf *= mu
                buf += (1 - tau) * d
            buf = state["momentum_buffer"]
            d = d + mu * buf if group["nesterov"] else buf
        p.data -= (lr * d).astype(p.data.dtype, copy=False)
