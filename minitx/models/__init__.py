"""Transformer models, one readable file each, with HF checkpoint load/save (hf_io.py).

    bert.py     BertModel, BertForPreTraining, BertForMaskedLM, BertForSequenceClassification, BertForTokenClassification
    gpt2.py     GPT2Model, GPT2LMHeadModel (KV cache, generate via minitx.generation.GenerationMixin)
    seq2seq.py  the encoder-decoder Transformer of Vaswani et al. (2017)
    outputs.py  output dataclasses with HF field names
    hf_io.py    HF names ⇄ ours, config.json + model.safetensors
"""
from minitx.models.bert import (
    BertConfig,
    BertForMaskedLM,
    BertForPreTraining,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)
from minitx.models.gpt2 import GPT2Config, GPT2LMHeadModel, GPT2Model, position_ids_from_attention_mask
from minitx.models.seq2seq import Seq2SeqConfig, Seq2SeqTransformer
