"""``TrainingArguments``: every knob of a training run, with HF Trainer's names and defaults."""
from dataclasses import asdict, dataclass, field
from typing import Optional


@dataclass
class TrainingArguments:
    """Hyper-parameters and bookkeeping of a run (names as in ``transformers.TrainingArguments``).

    The number of optimizer steps is ``max_steps`` when > 0, else
    ``num_train_epochs · ceil(len(train_dataset) / per_device_train_batch_size) / gradient_accumulation_steps``.
    Warm-up is ``warmup_steps`` when > 0, else ``warmup_ratio`` of the total steps.
    ``load_best_model_at_end``: after training, restore the weights of the evaluation (every ``eval_steps``) with
    the best ``metric_for_best_model`` (lower is better unless ``greater_is_better``); HF keeps them as a
    checkpoint on disk, minitx as one in-memory copy of the parameters.
    """

    output_dir: str
    num_train_epochs: float = 3.0
    max_steps: int = -1
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    warmup_ratio: float = 0.0
    warmup_steps: int = 0
    lr_scheduler_type: str = "linear"
    max_grad_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    logging_steps: int = 10
    eval_steps: Optional[int] = None
    save_steps: Optional[int] = None
    save_total_limit: Optional[int] = None
    load_best_model_at_end: bool = False
    metric_for_best_model: str = "loss"
    greater_is_better: Optional[bool] = None
    seed: int = 42
    disable_tqdm: bool = False
    plot: bool = True
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        checks = {
            "per_device_train_batch_size": self.per_device_train_batch_size >= 1,
            "per_device_eval_batch_size": self.per_device_eval_batch_size >= 1,
            "gradient_accumulation_steps": self.gradient_accumulation_steps >= 1,
            "learning_rate": self.learning_rate >= 0,
            "warmup_ratio": 0.0 <= self.warmup_ratio <= 1.0,
            "logging_steps": self.logging_steps >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"TrainingArguments: invalid {name}={getattr(self, name)!r}")
        if self.load_best_model_at_end and not self.eval_steps:
            raise ValueError("TrainingArguments: load_best_model_at_end needs eval_steps (evaluations to choose from)")
        if self.greater_is_better is None:  # HF's default: losses are minimised, other metrics maximised
            self.greater_is_better = not self.metric_for_best_model.removeprefix("eval_").endswith("loss")
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ValueError("TrainingArguments: set max_steps > 0 or num_train_epochs > 0")

    def to_dict(self) -> dict:
        return asdict(self)
