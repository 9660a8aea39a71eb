"""Split parameters into a weight-decay group and a no-decay group (the BERT/HF fine-tuning recipe).

Rule (HF's run_glue and Trainer convention): a parameter gets **no** weight decay when its name contains "bias",
"LayerNorm.weight", "layer_norm" or "norm" — biases and the gains of normalisation layers are not penalised
(decaying a LayerNorm gain towards 0 would shrink the activations, not simplify the model). Every other parameter
(matrices, embeddings) gets ``weight_decay``.
"""

NO_DECAY_KEYWORDS = ("bias", "LayerNorm.weight", "layer_norm", "norm")


def _is_no_decay(name: str) -> bool:
    return any(keyword in name for keyword in NO_DECAY_KEYWORDS)


def param_groups_no_decay(model_or_named_params, weight_decay: float) -> list:
    """Return ``[{"params": decayed, "weight_decay": wd}, {"params": others, "weight_decay": 0.0}]``.

    ``model_or_named_params``: a Module (anything with ``named_parameters()``) or an iterable of (name, Tensor).
    """
    named = model_or_named_params
    if hasattr(named, "named_parameters"):
        named = named.named_parameters()
    decay, no_decay = [], []
    for name, param in named:
        (no_decay if _is_no_decay(name) else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
