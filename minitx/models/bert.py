"""BERT (Devlin et al., 2019): a post-LN Transformer encoder over word + position + segment embeddings.

    h_0 = LayerNorm(E_word[ids] + E_pos[0..L) + E_type[token_type_ids])        (§3, Figure 2)
    h_l = TransformerEncoderLayer_l(h_{l-1})   post-LN, GELU (erf form), l = 1..N
    pooler_output = tanh(W h_N[CLS] + b)                                        (the [CLS] summary)

``position_embedding_type="alibi"`` (as MosaicBERT and JinaBERT name it) drops E_pos and adds ALiBi's distance
penalty -m_h·|i - j| to every layer's attention scores instead (``minitx.nn.positional.alibi_bias``): a small
model then attends to its neighbours from the first step instead of learning which position vectors are close.

Pre-training (§3.1) adds two heads: masked-LM (a dense+GELU+LayerNorm transform, then logits against the
*tied* word-embedding matrix) and next-sentence prediction (2-way, on the pooler output).
Parameter names follow HF where a student will cross-check (``embeddings.word_embeddings``, ``pooler.dense``,
``cls.predictions``); the encoder reuses ``minitx.nn.TransformerEncoderLayer`` (see hf_io.py for the renames).
"""
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from minitx import nn
from minitx.autograd import checkpoint, is_grad_enabled
from minitx.models.hf_io import PretrainedConfig, PreTrainedModel
from minitx.models.outputs import (
    BaseModelOutput,
    BertForPreTrainingOutput,
    MaskedLMOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from minitx.nn import functional as F
from minitx.tensor import Tensor, data_of


@dataclass
class BertConfig(PretrainedConfig):
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int = 0
    num_labels: int = 2
    problem_type: Optional[str] = None       # "regression" | "single_label_classification" | "multi_label_classification"
    classifier_dropout: Optional[float] = None
    position_embedding_type: str = "absolute"  # "absolute" (learned E_pos, BERT's) or "alibi" (no E_pos)
    alibi_slopes: Optional[Sequence[float]] = None  # one per head, >= 0 (None: the paper's, nn.alibi_slopes)

    def __post_init__(self):
        if self.position_embedding_type not in ("absolute", "alibi"):
            raise NotImplementedError(f"BertConfig: position_embedding_type {self.position_embedding_type!r}; "
                                      "minitx implements 'absolute' (learned position embeddings) and 'alibi'")
        if self.alibi_slopes is not None:
            if self.position_embedding_type != "alibi":
                raise ValueError("BertConfig: alibi_slopes is given but position_embedding_type is "
                                 f"{self.position_embedding_type!r}, not 'alibi'")
            slopes = np.asarray(self.alibi_slopes, dtype=np.float64)
            if slopes.shape != (self.num_attention_heads,) or not np.all(np.isfinite(slopes)) or np.any(slopes < 0):
                raise ValueError(f"BertConfig: alibi_slopes must be {self.num_attention_heads} finite numbers >= 0 "
                                 f"(one per attention head), got {list(self.alibi_slopes)}")
            self.alibi_slopes = [float(m) for m in slopes]

    def head_slopes(self) -> np.ndarray:
        """ALiBi's slope per head: ``alibi_slopes``, or the paper's geometric sequence when None."""
        if self.alibi_slopes is None:
            return nn.alibi_slopes(self.num_attention_heads)
        return np.asarray(self.alibi_slopes, dtype=np.float32)

    def to_hf_dict(self) -> dict:
        d = self.to_dict()
        d["model_type"] = "bert"
        d["id2label"] = {str(i): f"LABEL_{i}" for i in range(self.num_labels)}
        d["label2id"] = {f"LABEL_{i}": i for i in range(self.num_labels)}
        del d["num_labels"]
        for optional in ("problem_type", "alibi_slopes"):
            if d[optional] is None:
                del d[optional]
        return d


def as_ids(x) -> Optional[np.ndarray]:
    """Token ids as an int64 array (from a NumPy array, a list or a Tensor)."""
    if x is None:
        return None
    array = data_of(x)
    if array.dtype.kind not in "iub":
        raise TypeError(f"expected integer ids, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


class BertEmbeddings(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = (nn.Embedding(config.max_position_embeddings, config.hidden_size)
                                    if config.position_embedding_type == "absolute" else None)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids=None, position_ids=None):  # (B, L) -> (B, L, H)
        b, length = input_ids.shape
        token_type_ids = np.zeros((b, length), dtype=np.int64) if token_type_ids is None else token_type_ids
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        if self.position_embeddings is not None:
            x = x + self.position_embeddings(self.positions(length, position_ids))
        elif position_ids is not None:
            raise ValueError("BERT: position_ids given, but this model has no position embeddings "
                             "(position_embedding_type='alibi': positions enter as the attention's distance penalty)")
        return self.dropout(self.LayerNorm(x))

    def positions(self, length: int, position_ids=None) -> np.ndarray:  # (1, L) or the given (B, L)
        if length > self.position_embeddings.num_embeddings:
            raise ValueError(f"BERT: sequence length {length} exceeds max_position_embeddings "
                             f"{self.position_embeddings.num_embeddings}")
        return np.arange(length)[None, :] if position_ids is None else position_ids


class BertEncoder(nn.Module):
    """The stack of post-LN encoder layers; ``gradient_checkpointing`` (set by
    ``model.gradient_checkpointing_enable()``) recomputes each layer in backward while training."""

    gradient_checkpointing = False

    def __init__(self, config: BertConfig):
        super().__init__()
        self.alibi = config.head_slopes() if config.position_embedding_type == "alibi" else None  # (H,) slopes
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(config.hidden_size, config.num_attention_heads, config.intermediate_size,
                                       dropout=config.hidden_dropout_prob, activation=config.hidden_act,
                                       layer_norm_eps=config.layer_norm_eps, norm_first=False,
                                       attention_dropout=config.attention_probs_dropout_prob, ffn_dropout=0.0)
            for _ in range(config.num_hidden_layers))

    def forward(self, x, padding_mask=None, output_hidden_states=False, output_attentions=False):
        hidden_states, attentions = [x], []
        recompute = self.gradient_checkpointing and self.training and is_grad_enabled() and not output_attentions
        bias = None if self.alibi is None else nn.alibi_bias(self.alibi, x.shape[1])  # (1, H, L, L) or None
        for layer in self.layers:
            if recompute:
                x = checkpoint(lambda h, layer=layer: layer(h, padding_mask=padding_mask, attn_mask=bias).hidden_state,
                               x, layer.parameters())
                attentions.append(None)
            else:
                out = layer(x, padding_mask=padding_mask, attn_mask=bias, need_weights=output_attentions)
                x = out.hidden_state
                attentions.append(out.attention)
            hidden_states.append(x)
        return x, (tuple(hidden_states) if output_hidden_states else None), \
            (tuple(attentions) if output_attentions else None)


class BertPooler(nn.Module):
    """pooler_output = tanh(W h[CLS] + b): the sentence-level vector the NSP and classification heads read."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden):  # (B, L, H) -> (B, H)
        return self.dense(hidden[:, 0]).tanh()


class BertModel(PreTrainedModel):
    config_class = BertConfig
    family = "bert"
    hf_base_prefix = "bert"

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.init_weights(config.initializer_range)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                output_hidden_states: bool = False, output_attentions: bool = False) -> BaseModelOutput:
        """input_ids (B, L); attention_mask (B, L): 1 = token, 0 = padding; token_type_ids (B, L): segment A/B."""
        input_ids = as_ids(input_ids)
        x = self.embeddings(input_ids, as_ids(token_type_ids), as_ids(position_ids))
        x, hidden_states, attentions = self.encoder(x, as_ids(attention_mask), output_hidden_states, output_attentions)
        pooled = self.pooler(x) if self.pooler is not None else None
        return BaseModelOutput(last_hidden_state=x, pooler_output=pooled, hidden_states=hidden_states,
                               attentions=attentions)


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.get_activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps)

    def forward(self, x):
        return self.LayerNorm(self.activation(self.dense(x)))


class BertLMPredictionHead(nn.Module):
    """MLM logits = transform(h) Eᵀ + b, where E is the (tied) word-embedding matrix (V, H)."""

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.decoder.weight = word_embeddings.weight  # tied: one matrix reads and writes words
        self.bias = nn.Parameter(np.zeros(config.vocab_size, dtype=np.float32))

    def forward(self, x):  # (..., H) -> (..., V)
        return self.decoder(self.transform(x)) + self.bias


class BertPreTrainingHeads(nn.Module):
    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.predictions = BertLMPredictionHead(config, word_embeddings)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.predictions = BertLMPredictionHead(config, word_embeddings)


def masked_lm_loss(logits: Tensor, labels) -> Tensor:
    """Cross-entropy over the masked positions only: labels are -100 everywhere else."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), as_ids(labels).reshape(-1), ignore_index=-100)


def gather_masked(hidden: Tensor, labels) -> tuple:
    """The hidden states at the masked positions only, as google-research/bert's ``gather_indexes``
    (run_pretraining.py, with ``max_predictions_per_seq`` positions per sequence) gives them to the MLM head.

    hidden (B, L, H), labels (B, L) with -100 at unmasked positions -> rows (M, H) and their labels (M,),
    M = number of masked positions (about 0.15 · B · L). The head then does 1/0.15 ≈ 6.7x less work and
    keeps an (M, V) logit matrix alive instead of (B·L, V); the loss is the same, since the unmasked
    positions contribute nothing to it.
    """
    labels = as_ids(labels).reshape(-1)                 # (B·L,)
    rows = np.flatnonzero(labels != -100)               # (M,)
    return hidden.reshape(-1, hidden.shape[-1])[rows], labels[rows]


class _BertHeadModel(PreTrainedModel):
    config_class = BertConfig
    family = "bert"
    base_model_prefix = hf_base_prefix = "bert"

    def mlm_logits_and_loss(self, hidden: Tensor, labels, return_full_logits: Optional[bool]) -> tuple:
        """(logits (B, L, V) or None, MLM loss or None) from the last hidden states (B, L, H).

        ``return_full_logits`` None (the default) means: full logits unless this is a training step (labels
        given and grad mode on). In a training step the head runs on the masked positions only
        (``gather_masked``) and the logits field is None; evaluation under ``no_grad`` (Trainer.evaluate, whose
        metrics read the logits) and inference keep HF's (B, L, V) logits. Pass True to get both in training
        too (the loss is then read off the full logits: same value), False to never compute them.
        """
        training_step = labels is not None and is_grad_enabled()
        full = not training_step if return_full_logits is None else return_full_logits
        if full:
            logits = self.cls.predictions(hidden)
            return logits, (masked_lm_loss(logits, labels) if labels is not None else None)
        if labels is None:
            return None, None
        masked_hidden, masked_labels = gather_masked(hidden, labels)      # (M, H), (M,)
        return None, F.cross_entropy(self.cls.predictions(masked_hidden), masked_labels)


class BertForPreTraining(_BertHeadModel):
    """BERT + MLM and NSP heads. loss = MLM cross-entropy (labels -100 ignored) + NSP cross-entropy.
    In a training step ``prediction_logits`` is None unless ``return_full_logits=True`` (``mlm_logits_and_loss``)."""

    tied_keys = ("cls.predictions.decoder.weight",)

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.cls = BertPreTrainingHeads(config, self.bert.embeddings.word_embeddings)
        self.init_weights(config.initializer_range)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                next_sentence_label=None, output_hidden_states=False, output_attentions=False,
                return_full_logits: Optional[bool] = None):
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states,
                        output_attentions)
        prediction_logits, loss = self.mlm_logits_and_loss(out.last_hidden_state, labels, return_full_logits)
        seq_relationship_logits = self.cls.seq_relationship(out.pooler_output)
        if next_sentence_label is not None:
            nsp = F.cross_entropy(seq_relationship_logits, as_ids(next_sentence_label).reshape(-1))
            loss = nsp if loss is None else loss + nsp
        return BertForPreTrainingOutput(loss, prediction_logits, seq_relationship_logits, out.hidden_states,
                                        out.attentions)


class BertForMaskedLM(_BertHeadModel):
    """BERT + the MLM head. In a training step ``logits`` is None unless ``return_full_logits=True``."""

    tied_keys = ("cls.predictions.decoder.weight",)

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config, self.bert.embeddings.word_embeddings)
        self.init_weights(config.initializer_range)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                output_hidden_states=False, output_attentions=False,
                return_full_logits: Optional[bool] = None) -> MaskedLMOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states,
                        output_attentions)
        logits, loss = self.mlm_logits_and_loss(out.last_hidden_state, labels, return_full_logits)
        return MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)


def binary_cross_entropy_with_logits(logits: Tensor, targets: Tensor) -> Tensor:
    """mean(max(x, 0) - x·y + log(1 + exp(-|x|))): the stable form of BCE(sigmoid(x), y)."""
    return (logits.relu() - logits * targets + ((-logits.abs()).exp() + 1.0).log()).mean()


class BertForSequenceClassification(_BertHeadModel):
    """Classification (or regression when num_labels == 1) on the pooler output, like HF:
    num_labels == 1 -> MSE; integer labels -> cross-entropy; float multi-hot labels -> BCE with logits."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights(config.initializer_range)

    def problem_type(self, labels: np.ndarray) -> str:
        if self.config.problem_type is not None:
            return self.config.problem_type
        if self.config.num_labels == 1:
            return "regression"
        return "single_label_classification" if labels.dtype.kind in "iu" else "multi_label_classification"

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                output_hidden_states=False, output_attentions=False) -> SequenceClassifierOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states,
                        output_attentions)
        logits = self.classifier(self.dropout(out.pooler_output))  # (B, num_labels)
        loss = None
        if labels is not None:
            labels = data_of(labels)
            kind = self.problem_type(labels)
            if kind == "regression":
                target = labels.astype(logits.dtype)
                loss = (F.mse_loss(logits.reshape(-1), target.reshape(-1)) if self.config.num_labels == 1
                        else F.mse_loss(logits, target))
            elif kind == "single_label_classification":
                loss = F.cross_entropy(logits, labels.astype(np.int64).reshape(-1))
            else:
                loss = binary_cross_entropy_with_logits(logits, Tensor(labels.astype(logits.dtype)))
        return SequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions)


class BertForTokenClassification(_BertHeadModel):
    """A label per token (NER, POS): logits (B, L, num_labels); loss = cross-entropy, -100 ignored."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=False)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights(config.initializer_range)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                output_hidden_states=False, output_attentions=False) -> TokenClassifierOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, position_ids, output_hidden_states,
                        output_attentions)
        logits = self.classifier(self.dropout(out.last_hidden_state))
        loss = masked_lm_loss(logits, labels) if labels is not None else None
        return TokenClassifierOutput(loss, logits, out.hidden_states, out.attentions)
