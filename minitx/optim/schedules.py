"""Learning-rate schedules: a multiplier λ(step) applied to each group's initial learning rate.

    lr(step) = base_lr · λ(step)

``LambdaLR`` is the engine (same contract as torch's: construction sets step 0, each ``step()`` advances by one and
writes the new lr into the optimizer's groups; call it *after* ``optimizer.step()``). The schedules are λ functions:

- constant:                 λ = 1
- constant_with_warmup:     λ = s / w  for s < w, then 1
- linear (warmup + decay):  λ = s / w  for s < w, then max(0, (T - s) / (T - w))          (HF's default; BERT §A.2)
- cosine (warmup + decay):  λ = s / w  for s < w, then max(0, ½ (1 + cos(2π c p))),  p = (s - w) / (T - w), c = ½
- noam (Vaswani §5.3):      λ = d_model^-0.5 · min(s^-0.5, s · w^-1.5)   (λ(0) = 0; use base lr 1.0 or a factor)

with s the step, w the warmup steps and T the total training steps. The formulas equal HF's
``get_*_schedule_with_warmup`` exactly.
"""
import math
from functools import partial


class LambdaLR:
    """Sets ``lr = base_lr · lr_lambda(step)`` in every parameter group of ``optimizer``."""

    def __init__(self, optimizer, lr_lambda):
        self.optimizer = optimizer
        self.lr_lambda = lr_lambda
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = -1
        self.step()

    def step(self) -> None:
        self.last_epoch += 1
        self._last_lr = [base * self.lr_lambda(self.last_epoch) for base in self.base_lrs]
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def get_last_lr(self) -> list:
        """The learning rate of each group, as set by the last ``step()``."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs), "_last_lr": list(self._last_lr)}

    def load_state_dict(self, state: dict) -> None:
        self.last_epoch = state["last_epoch"]
        self.base_lrs = list(state["base_lrs"])
        self._last_lr = list(state["_last_lr"])
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr


def _warmup(step: int, num_warmup_steps: int) -> float:
    return float(step) / float(max(1, num_warmup_steps))


def _constant(step: int) -> float:
    return 1.0


def _constant_with_warmup(step: int, *, num_warmup_steps: int) -> float:
    return _warmup(step, num_warmup_steps) if step < num_warmup_steps else 1.0


def _linear_with_warmup(step: int, *, num_warmup_steps: int, num_training_steps: int) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
    return max(0.0, float(num_training_steps - step) / float(max(1, num_training_steps - num_warmup_steps)))


def _cosine_with_warmup(step: int, *, num_warmup_steps: int, num_training_steps: int, num_cycles: float) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
    progress = float(step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))


def _noam(step: int, *, d_model: int, num_warmup_steps: int) -> float:
    if step == 0:
        return 0.0
    return d_model ** -0.5 * min(step ** -0.5, step * num_warmup_steps ** -1.5)


def get_constant_schedule(optimizer) -> LambdaLR:
    return LambdaLR(optimizer, _constant)


def get_constant_schedule_with_warmup(optimizer, num_warmup_steps: int) -> LambdaLR:
    return LambdaLR(optimizer, partial(_constant_with_warmup, num_warmup_steps=num_warmup_steps))


def get_linear_schedule_with_warmup(optimizer, num_warmup_steps: int, num_training_steps: int) -> LambdaLR:
    return LambdaLR(optimizer, partial(_linear_with_warmup, num_warmup_steps=num_warmup_steps,
                                       num_training_steps=num_training_steps))


def get_cosine_schedule_with_warmup(optimizer, num_warmup_steps: int, num_training_steps: int,
                                    num_cycles: float = 0.5) -> LambdaLR:
    return LambdaLR(optimizer, partial(_cosine_with_warmup, num_warmup_steps=num_warmup_steps,
                                       num_training_steps=num_training_steps, num_cycles=num_cycles))


def get_noam_schedule(optimizer, d_model: int, num_warmup_steps: int = 4000) -> LambdaLR:
    """Vaswani et al. §5.3 (with the optimizer's lr as the extra factor; 1.0 gives the paper's schedule)."""
    return LambdaLR(optimizer, partial(_noam, d_model=d_model, num_warmup_steps=num_warmup_steps))


def get_scheduler(name: str, optimizer, num_warmup_steps: int = None, num_training_steps: int = None) -> LambdaLR:
    """HF-style factory: ``name`` in "constant", "constant_with_warmup", "linear", "cosine"."""
    if name == "constant":
        return get_constant_schedule(optimizer)
    if num_warmup_steps is None:
        raise ValueError(f"get_scheduler: schedule '{name}' needs num_warmup_steps")
    if name == "constant_with_warmup":
        return get_constant_schedule_with_warmup(optimizer, num_warmup_steps)
    if num_training_steps is None:
        raise ValueError(f"get_scheduler: schedule '{name}' needs num_training_steps")
    if name == "linear":
        return get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps)
    if name == "cosine":
        return get_cosine_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps)
    raise ValueError(f"get_scheduler: unknown schedule '{name}'; "
                     "choose one of 'constant', 'constant_with_warmup', 'linear', 'cosine'")
