"""Model outputs: small dataclasses whose field names are HF's, so ``out.logits`` reads the same in both.

Fields a model did not compute are ``None``. ``hidden_states`` is a tuple (embeddings output, then one entry
per layer) when ``output_hidden_states=True``; ``attentions`` a tuple of (B, h, L, L) probabilities per layer
when ``output_attentions=True``; ``past_key_values`` a tuple of per-layer (K, V) when ``use_cache=True``.
"""
from dataclasses import dataclass, fields
from typing import Optional

from minitx.tensor import Tensor


@dataclass
class ModelOutput:
    def __getitem__(self, key: str):
        """``out["logits"]`` as well as ``out.logits`` (like HF's ModelOutput)."""
        if key not in {f.name for f in fields(self)}:
            raise KeyError(f"{type(self).__name__} has no field {key!r}")
        return getattr(self, key)

    def keys(self):
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


@dataclass
class BaseModelOutput(ModelOutput):
    last_hidden_state: Tensor = None                # (B, L, H)
    pooler_output: Optional[Tensor] = None          # (B, H): tanh(W h_[CLS] + b) (BERT)
    past_key_values: Optional[tuple] = None
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


@dataclass
class BertForPreTrainingOutput(ModelOutput):
    loss: Optional[Tensor] = None                   # MLM cross-entropy + NSP cross-entropy
    prediction_logits: Tensor = None                # (B, L, V)
    seq_relationship_logits: Tensor = None          # (B, 2): is-next / random
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


@dataclass
class MaskedLMOutput(ModelOutput):
    loss: Optional[Tensor] = None
    logits: Tensor = None                           # (B, L, V)
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


@dataclass
class SequenceClassifierOutput(ModelOutput):
    loss: Optional[Tensor] = None
    logits: Tensor = None                           # (B, num_labels)
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


@dataclass
class TokenClassifierOutput(ModelOutput):
    loss: Optional[Tensor] = None
    logits: Tensor = None                           # (B, L, num_labels)
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


@dataclass
class CausalLMOutput(ModelOutput):
    loss: Optional[Tensor] = None                   # next-token cross-entropy (labels shifted inside)
    logits: Tensor = None                           # (B, L, V)
    past_key_values: Optional[tuple] = None         # per layer (K, V), each (B, h, L_total, d_head)
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


@dataclass
class Seq2SeqLMOutput(ModelOutput):
    loss: Optional[Tensor] = None
    logits: Tensor = None                           # (B, L_tgt, V_tgt)
    encoder_last_hidden_state: Optional[Tensor] = None
