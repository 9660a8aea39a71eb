"""Optimizers, gradient clipping and learning-rate schedules (``import minitx.optim as optim``)."""
from minitx.optim.adam import Adam, AdamW
from minitx.optim.clip import clip_grad_norm_
from minitx.optim.optimizer import Optimizer
from minitx.optim.param_groups import NO_DECAY_KEYWORDS, param_groups_no_decay
from minitx.optim.schedules import (
    LambdaLR,
    get_constant_schedule,
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_linear_schedule_with_warmup,
    get_noam_schedule,
    get_scheduler,
)
from minitx.optim.sgd import SGD

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm_", "param_groups_no_decay", "NO_DECAY_KEYWORDS",
    "LambdaLR", "get_constant_schedule", "get_constant_schedule_with_warmup", "get_linear_schedule_with_warmup",
    "get_cosine_schedule_with_warmup", "get_noam_schedule", "get_scheduler",
]
