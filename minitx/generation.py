"""Text generation for causal language models: greedy, sampling and beam search (HF ``generate`` semantics)."""


class GenerationMixin:
    """Adds ``generate(input_ids, ...)`` to a causal LM whose forward returns ``.logits`` and ``.past_key_values``."""

    def generate(self, input_ids, **kwargs):
        raise NotImplementedError("generate is being written")
