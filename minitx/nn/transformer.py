"""Transformer layers and stacks (Vaswani et al., 2017, §3.1), batch first: (B, L, d_model).

Each sub-layer (attention or feed-forward) sits inside a residual connection, with LayerNorm either
after the sum (post-LN, the original paper and BERT) or before the sub-layer (pre-LN, GPT-2; Xiong et al.,
2020 show it trains without warm-up):

    post-LN:  x = LayerNorm(x + Dropout(Sublayer(x)))
    pre-LN:   x = x + Dropout(Sublayer(LayerNorm(x)))

A pre-LN stack ends with one more LayerNorm (GPT-2's ``ln_f``), since its residual stream is never
normalised otherwise. A decoder-only model (GPT-2) is a stack of *encoder* layers with a causal mask.
"""
from typing import NamedTuple, Optional

from minitx.nn.attention import MultiHeadAttention
from minitx.nn.dropout import Dropout
from minitx.nn.feedforward import FeedForward
from minitx.nn.module import Module, ModuleList
from minitx.nn.norm import LayerNorm
from minitx.tensor import Tensor


class LayerOutput(NamedTuple):
    hidden_state: Tensor                 # (B, L, d_model)
    attention: Optional[Tensor]          # self-attention probabilities (B, h, L, Lk) when need_weights
    past_key_value: Optional[tuple]      # the cache to pass to the next step when use_cache


class TransformerEncoderLayer(Module):
    """Self-attention + feed-forward, each in a residual block. Parameter names: ``self_attn``,
    ``feed_forward``, ``norm1`` (after/before attention), ``norm2`` (after/before the FFN).

    ``dropout`` is applied to each sub-layer output (and, unless overridden, to the attention probabilities
    and inside the FFN, as in ``torch.nn.TransformerEncoderLayer``).
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, norm_first: bool = False,
                 attention_dropout: float = None, ffn_dropout: float = None):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout if attention_dropout is None else attention_dropout)
        self.feed_forward = FeedForward(d_model, dim_feedforward, dropout if ffn_dropout is None else ffn_dropout,
                                        activation)
        self.norm1 = LayerNorm(d_model, layer_norm_eps)
        self.norm2 = LayerNorm(d_model, layer_norm_eps)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)

    def _attend(self, x, **kw):
        out = self.self_attn(x, **kw)
        return self.dropout1(out.output), out

    def forward(self, x, padding_mask=None, attn_mask=None, is_causal: bool = False, need_weights: bool = False,
                past_key_value=None, use_cache: bool = False) -> LayerOutput:
        kw = dict(padding_mask=padding_mask, attn_mask=attn_mask, is_causal=is_causal, need_weights=need_weights,
                  past_key_value=past_key_value, use_cache=use_cache)
        if self.norm_first:
            attended, attn = self._attend(self.norm1(x), **kw)
            x = x + attended
            x = x + self.dropout2(self.feed_forward(self.norm2(x)))
        else:
            attended, attn = self._attend(x, **kw)
            x = self.norm1(x + attended)
            x = self.norm2(x + self.dropout2(self.feed_forward(x)))
        return LayerOutput(x, attn.weights, attn.past_key_value)


class TransformerDecoderLayer(Module):
    """Masked self-attention, cross-attention to the encoder output (``memory``), feed-forward; each in a
    residual block with ``norm1``, ``norm2``, ``norm3``. The cache is ((K_self, V_self), (K_cross, V_cross))."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, norm_first: bool = False):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout)
        self.cross_attn = MultiHeadAttention(d_model, nhead, dropout)
        self.feed_forward = FeedForward(d_model, dim_feedforward, dropout, activation)
        self.norm1 = LayerNorm(d_model, layer_norm_eps)
        self.norm2 = LayerNorm(d_model, layer_norm_eps)
        self.norm3 = LayerNorm(d_model, layer_norm_eps)
        self.dropout1, self.dropout2, self.dropout3 = Dropout(dropout), Dropout(dropout), Dropout(dropout)

    def forward(self, x, memory, padding_mask=None, memory_padding_mask=None, attn_mask=None, is_causal: bool = True,
                need_weights: bool = False, past_key_value=None, use_cache: bool = False) -> LayerOutput:
        past_self, past_cross = past_key_value if past_key_value is not None else (None, None)

        def self_block(h):
            out = self.self_attn(h, padding_mask=padding_mask, attn_mask=attn_mask, is_causal=is_causal,
                                 need_weights=need_weights, past_key_value=past_self, use_cache=use_cache)
            return self.dropout1(out.output), out

        def cross_block(h):
            out = self.cross_attn(h, context=memory, padding_mask=memory_padding_mask,
                                  past_key_value=past_cross, use_cache=use_cache)
            return self.dropout2(out.output), out

        if self.norm_first:
            attended, sa = self_block(self.norm1(x))
            x = x + attended
            attended, ca = cross_block(self.norm2(x))
            x = x + attended
            x = x + self.dropout3(self.feed_forward(self.norm3(x)))
        else:
            attended, sa = self_block(x)
            x = self.norm1(x + attended)
            attended, ca = cross_block(x)
            x = self.norm2(x + attended)
            x = self.norm3(x + self.dropout3(self.feed_forward(x)))
        cache = (sa.past_key_value, ca.past_key_value) if use_cache else None
        return LayerOutput(x, sa.weights, cache)


class TransformerEncoder(Module):
    """``num_layers`` encoder layers (+ a final LayerNorm when pre-LN)."""

    def __init__(self, num_layers: int, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, norm_first: bool = False):
        super().__init__()
        self.layers = ModuleList(
            TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, norm_first)
            for _ in range(num_layers))
        self.norm = LayerNorm(d_model, layer_norm_eps) if norm_first else None

    def forward(self, x, padding_mask=None, attn_mask=None, is_causal: bool = False) -> Tensor:
        for layer in self.layers:
            x = layer(x, padding_mask=padding_mask, attn_mask=attn_mask, is_causal=is_causal).hidden_state
        return self.norm(x) if self.norm is not None else x


class TransformerDecoder(Module):
    """``num_layers`` decoder layers (+ a final LayerNorm when pre-LN); causal self-attention."""

    def __init__(self, num_layers: int, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, norm_first: bool = False):
        super().__init__()
        self.layers = ModuleList(
            TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, norm_first)
            for _ in range(num_layers))
        self.norm = LayerNorm(d_model, layer_norm_eps) if norm_first else None

    def forward(self, x, memory, padding_mask=None, memory_padding_mask=None) -> Tensor:
        for layer in self.layers:
            x = layer(x, memory, padding_mask=padding_mask, memory_padding_mask=memory_padding_mask).hidden_state
        return self.norm(x) if self.norm is not None else x


class Transformer(Module):
    """The encoder-decoder Transformer on embedded sequences: src (B, Ls, d), tgt (B, Lt, d) -> (B, Lt, d)."""

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6, num_decoder_layers: int = 6,
                 dim_feedforward: int = 2048, dropout: float = 0.1, activation: str = "relu",
                 layer_norm_eps: float = 1e-5, norm_first: bool = False):
        super().__init__()
        args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, norm_first)
        self.encoder = TransformerEncoder(num_encoder_layers, *args)
        self.decoder = TransformerDecoder(num_decoder_layers, *args)

    def forward(self, src, tgt, src_padding_mask=None, tgt_padding_mask=None) -> Tensor:
        memory = self.encoder(src, padding_mask=src_padding_mask)
        return self.decoder(tgt, memory, padding_mask=tgt_padding_mask, memory_padding_mask=src_padding_mask)
