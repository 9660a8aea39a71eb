"""GPT-2 (Radford et al., 2019): a decoder-only, pre-LN Transformer language model.

    h_0 = E_tok[ids] + E_pos[positions]
    h_l = h + Attn(LN(h)) ; h + MLP(LN(h))     causal self-attention, GELU tanh form (``gelu_new``)
    logits = LN_f(h_N) E_tokᵀ                   the LM head is tied to the token embeddings

Each block is ``minitx.nn.TransformerEncoderLayer(norm_first=True)`` run with ``is_causal=True``: a
decoder-only model needs no cross-attention. ``past_key_values`` (one ``KVCache`` per layer) lets
generation feed one new token per step; ``logits_to_keep=1`` applies the LM head to the last position only
(all generation needs). Names follow HF (``wte``, ``wpe``, ``h``, ``ln_f``, ``lm_head``); hf_io.py maps
the block internals to HF's ``ln_1``/``attn.c_attn``/``mlp.c_fc``… and transposes the Conv1D weights.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from minitx import nn
from minitx.autograd import checkpoint, is_grad_enabled
from minitx.generation import GenerationMixin
from minitx.models.bert import as_ids
from minitx.models.hf_io import PretrainedConfig, PreTrainedModel
from minitx.models.outputs import BaseModelOutput, CausalLMOutput
from minitx.nn import functional as F
from minitx.nn.attention import KVCache
from minitx.ops.linear_cross_entropy import linear_cross_entropy


@dataclass
class GPT2Config(PretrainedConfig):
    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: Optional[int] = None            # MLP width; None means 4 · n_embd
    activation_function: str = "gelu_new"
    resid_pdrop: float = 0.1
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    bos_token_id: Optional[int] = 50256
    eos_token_id: Optional[int] = 50256
    pad_token_id: Optional[int] = None
    scale_attn_weights: bool = True
    scale_attn_by_inverse_layer_idx: bool = False
    reorder_and_upcast_attn: bool = False
    tie_word_embeddings: bool = True

    def __post_init__(self):
        if not self.scale_attn_weights or self.scale_attn_by_inverse_layer_idx:
            raise NotImplementedError("GPT2Config: only the standard 1/√d attention scaling is implemented")
        if not self.tie_word_embeddings:
            raise NotImplementedError("GPT2Config: the LM head is always tied to wte in minitx")

    def to_hf_dict(self) -> dict:
        return {**self.to_dict(), "model_type": "gpt2"}


def position_ids_from_attention_mask(attention_mask) -> np.ndarray:
    """Positions for a left-padded batch, as HF ``generate`` computes them (generation/utils.py,
    ``_prepare_position_ids_for_generation``): cumsum(mask) - 1, with 0 at padding. GPT-2's forward itself
    uses 0..L-1 (plus the cache length) when ``position_ids`` is not given, exactly like HF's forward."""
    mask = as_ids(attention_mask)
    return np.where(mask == 0, 0, np.cumsum(mask, axis=-1) - 1)


class GPT2Model(PreTrainedModel):
    """Embeddings, the pre-LN blocks, the final LayerNorm. ``gradient_checkpointing`` (set by
    ``model.gradient_checkpointing_enable()``) recomputes each block in backward while training."""

    config_class = GPT2Config
    family = "gpt2"
    hf_base_prefix = "transformer"
    gradient_checkpointing = False

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList(
            nn.TransformerEncoderLayer(config.n_embd, config.n_head, config.n_inner or 4 * config.n_embd,
                                       dropout=config.resid_pdrop, activation=config.activation_function,
                                       layer_norm_eps=config.layer_norm_epsilon, norm_first=True,
                                       attention_dropout=config.attn_pdrop, ffn_dropout=0.0)
            for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, config.layer_norm_epsilon)
        self.init_gpt2_weights()

    def init_gpt2_weights(self):
        """HF's init, plus GPT-2 §2.3: residual projections scaled by 1/√(2 · n_layer)."""
        self.init_weights(self.config.initializer_range)
        scale = 1.0 / np.sqrt(2 * self.config.n_layer)
        for block in self.h:
            block.self_attn.out_proj.weight.data *= scale
            block.feed_forward.linear2.weight.data *= scale

    def forward(self, input_ids, past_key_values=None, attention_mask=None, token_type_ids=None, position_ids=None,
                use_cache: bool = False, output_hidden_states: bool = False,
                output_attentions: bool = False) -> BaseModelOutput:
        """input_ids (B, L) — only the new tokens when ``past_key_values`` is given;
        attention_mask (B, L_past + L): 1 = token, 0 = padding."""
        input_ids = as_ids(input_ids)
        past_length = past_key_values[0].length if past_key_values is not None else 0
        length = input_ids.shape[1]
        if position_ids is None:
            position_ids = np.arange(past_length, past_length + length)[None, :]
        position_ids = as_ids(position_ids)
        if position_ids.max(initial=0) >= self.config.n_positions:
            raise ValueError(f"GPT-2: position {position_ids.max()} exceeds n_positions {self.config.n_positions}")
        x = self.wte(input_ids) + self.wpe(position_ids)
        if token_type_ids is not None:
            x = x + self.wte(as_ids(token_type_ids))
        x = self.drop(x)
        mask = as_ids(attention_mask)
        if mask is not None and mask.all():
            mask = None  # no padding: nothing to mask beyond causality (HF's SDPA path skips it too)
        hidden_states, attentions, presents = [], [], []
        recompute = (self.gradient_checkpointing and self.training and is_grad_enabled() and not use_cache
                     and not output_attentions)
        for i, block in enumerate(self.h):
            hidden_states.append(x)
            if recompute:
                x = checkpoint(lambda h, block=block: block(h, padding_mask=mask, is_causal=True).hidden_state, x,
                               block.parameters())
                continue
            out = block(x, padding_mask=mask, is_causal=True, need_weights=output_attentions,
                        past_key_value=past_key_values[i] if past_key_values is not None else None,
                        use_cache=use_cache)
            x = out.hidden_state
            attentions.append(out.attention)
            presents.append(out.past_key_value)
        x = self.ln_f(x)
        hidden_states.append(x)  # HF: the input of every block, then the final (normalised) output
        return BaseModelOutput(last_hidden_state=x,
                               past_key_values=tuple(presents) if use_cache else None,
                               hidden_states=tuple(hidden_states) if output_hidden_states else None,
                               attentions=tuple(attentions) if output_attentions else None)


class GPT2LMHeadModel(PreTrainedModel, GenerationMixin):
    """GPT-2 with the tied LM head. ``labels`` (B, L) are shifted inside, like HF: position t predicts
    labels[t + 1]; -100 is ignored. ``logits_to_keep`` = n > 0 computes the logits of the last n positions
    only (HF's argument; 0 = all)."""

    config_class = GPT2Config
    family = "gpt2"
    base_model_prefix = hf_base_prefix = "transformer"
    tied_keys = ("lm_head.weight",)

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.config = config
        self.transformer = GPT2Model(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight

    loss_chunk_size = 1024  # tokens per chunk of the LM head + cross-entropy in a training step

    def forward(self, input_ids, past_key_values=None, attention_mask=None, token_type_ids=None, position_ids=None,
                use_cache: bool = False, labels=None, output_hidden_states: bool = False,
                output_attentions: bool = False, logits_to_keep: int = 0,
                return_full_logits: Optional[bool] = None) -> CausalLMOutput:
        """In a training step (labels given, grad on, ``return_full_logits`` not True) the LM head and the loss
        run ``loss_chunk_size`` tokens at a time (``linear_cross_entropy``) and ``logits`` is None: the
        (B·L, V) logits are never all alive. Otherwise (evaluation, generation) the logits are returned."""
        out = self.transformer(input_ids, past_key_values, attention_mask, token_type_ids, position_ids, use_cache,
                               output_hidden_states, output_attentions)
        training_step = labels is not None and is_grad_enabled() and not logits_to_keep
        if training_step and not return_full_logits:
            return CausalLMOutput(self.chunked_loss(out.last_hidden_state, labels), None, out.past_key_values,
                                  out.hidden_states, out.attentions)
        hidden = out.last_hidden_state[:, -logits_to_keep:] if logits_to_keep else out.last_hidden_state
        logits = self.lm_head(hidden)  # (B, L or logits_to_keep, V)
        loss = None
        if labels is not None:
            shifted = as_ids(labels)[:, 1:]
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), shifted.reshape(-1),
                                   ignore_index=-100)
        return CausalLMOutput(loss, logits, out.past_key_values, out.hidden_states, out.attentions)

    def chunked_loss(self, hidden, labels):
        """Cross-entropy of position t's logits against labels[t + 1] (HF's shift), -100 ignored, computed
        chunk by chunk from the hidden states (B, L, H) without forming the (B, L, V) logits."""
        hidden = hidden[:, :-1].reshape(-1, hidden.shape[-1])             # (B·(L-1), H)
        shifted = as_ids(labels)[:, 1:].reshape(-1)                         # (B·(L-1),)
        return linear_cross_entropy(hidden, self.lm_head.weight, shifted, chunk=self.loss_chunk_size)

    def new_kv_cache(self, max_length: int) -> tuple:
        """An empty cache for generation, one ``KVCache`` per layer with room for ``max_length`` positions."""
        return tuple(KVCache(self.config.n_head, max_length) for _ in self.transformer.h)
