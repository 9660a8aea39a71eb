"""The encoder-decoder Transformer of Vaswani et al. (2017) as a sequence-to-sequence model.

    memory = Encoder(√d · E_src[src] + PE)                       (§3.4: embeddings scaled by √d_model)
    logits = W_out Decoder(√d · E_tgt[tgt_in] + PE, memory)      (§3.5: sinusoidal positions)

Training uses teacher forcing: the decoder reads the target shifted right (``[BOS] y_1 … y_{n-1}``) and
predicts ``y_1 … y_n``; its causal mask stops position t from peeking at t+1. ``greedy_decode`` then
generates one token at a time from ``[BOS]``.
"""
import math
from dataclasses import dataclass

import numpy as np

from minitx import nn
from minitx.models.bert import as_ids
from minitx.models.outputs import Seq2SeqLMOutput
from minitx.nn import functional as F
from minitx.tensor import no_grad


@dataclass
class Seq2SeqConfig:
    src_vocab_size: int
    tgt_vocab_size: int
    d_model: int = 512
    nhead: int = 8
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    dim_feedforward: int = 2048
    dropout: float = 0.1
    max_len: int = 512
    norm_first: bool = False
    pad_token_id: int = 0


class Seq2SeqTransformer(nn.Module):
    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = config
        self.src_embed = nn.Embedding(config.src_vocab_size, config.d_model, padding_idx=config.pad_token_id)
        self.tgt_embed = nn.Embedding(config.tgt_vocab_size, config.d_model, padding_idx=config.pad_token_id)
        self.positions = nn.SinusoidalPositionalEncoding(config.d_model, config.max_len)
        self.dropout = nn.Dropout(config.dropout)
        self.transformer = nn.Transformer(config.d_model, config.nhead, config.num_encoder_layers,
                                          config.num_decoder_layers, config.dim_feedforward, config.dropout,
                                          norm_first=config.norm_first)
        self.generator = nn.Linear(config.d_model, config.tgt_vocab_size)
        scale = config.d_model ** -0.5  # N(0, 1/d) embeddings: after the √d scaling, unit-variance inputs
        self.src_embed.weight.data *= scale
        self.tgt_embed.weight.data *= scale

    def embed(self, embedding: nn.Embedding, ids):
        return self.dropout(self.positions(embedding(ids) * math.sqrt(self.config.d_model)))

    def encode(self, src_ids, src_padding_mask=None):
        return self.transformer.encoder(self.embed(self.src_embed, src_ids), padding_mask=src_padding_mask)

    def decode(self, tgt_ids, memory, src_padding_mask=None, tgt_padding_mask=None):
        hidden = self.transformer.decoder(self.embed(self.tgt_embed, tgt_ids), memory, padding_mask=tgt_padding_mask,
                                          memory_padding_mask=src_padding_mask)
        return self.generator(hidden)  # (B, L_tgt, V_tgt)

    def forward(self, src_ids, tgt_ids, src_padding_mask=None, tgt_padding_mask=None, labels=None) -> Seq2SeqLMOutput:
        """src_ids (B, Ls); tgt_ids (B, Lt) the decoder input; labels (B, Lt) the targets (-100 ignored)."""
        src_ids, tgt_ids = as_ids(src_ids), as_ids(tgt_ids)
        if src_padding_mask is None:
            src_padding_mask = (src_ids != self.config.pad_token_id).astype(np.int64)
        memory = self.encode(src_ids, src_padding_mask)
        logits = self.decode(tgt_ids, memory, src_padding_mask, tgt_padding_mask)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), as_ids(labels).reshape(-1), ignore_index=-100)
        return Seq2SeqLMOutput(loss, logits, memory)

    def greedy_decode(self, src_ids, bos_token_id: int, max_new_tokens: int, eos_token_id: int = None) -> np.ndarray:
        """Encode once, then repeatedly append argmax of the next-token logits. Returns (B, 1 + new) ids."""
        src_ids = as_ids(src_ids)
        src_padding_mask = (src_ids != self.config.pad_token_id).astype(np.int64)
        out = np.full((src_ids.shape[0], 1), bos_token_id, dtype=np.int64)
        with no_grad():
            memory = self.encode(src_ids, src_padding_mask)
            for _ in range(max_new_tokens):
                logits = self.decode(out, memory, src_padding_mask)
                next_token = logits.numpy()[:, -1].argmax(-1)
                out = np.concatenate([out, next_token[:, None]], axis=1)
                if eos_token_id is not None and np.all((out == eos_token_id).any(axis=1)):
                    break
        return out
