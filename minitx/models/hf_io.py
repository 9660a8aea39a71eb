"""Hugging Face checkpoints ⇄ minitx models: ``Model.from_pretrained(dir)`` and ``model.save_pretrained(dir)``.

A checkpoint directory holds ``config.json`` (the hyper-parameters) and ``model.safetensors`` (named
tensors; read with ``safetensors.numpy``, so no torch is needed). Our parameter names differ from HF's
because our models reuse the generic layers of ``minitx.nn``; the tables below translate, one regex rule
per layer part. Three things are more than a rename:

* GPT-2 uses ``Conv1D`` layers whose weight is stored (in, out) — the transpose of ``Linear``'s (out, in).
* GPT-2 fuses the query/key/value projections into one ``c_attn`` (D, 3D); we split it into three and
  re-fuse on save.
* Old BERT checkpoints (TensorFlow ports) name LayerNorm's parameters ``gamma``/``beta``.

Base-model prefixes (``bert.``, ``transformer.``) are added or stripped as needed, like HF: a BertModel
loads from a BertForPreTraining checkpoint (dropping the heads), and a head model loads from a base
checkpoint (its new heads keep their random init; a warning names them).
"""
import json
import os
import re
import warnings
from dataclasses import asdict, dataclass, fields

import numpy as np

from minitx.nn.module import Module

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

COPY, CONV1D, Q, K, V = "copy", "conv1d", 0, 1, 2

# (our-name regex, HF-name template, transform). The first matching rule applies; no match = same name.
BERT_RULES = [
    (r"encoder\.layers\.(\d+)\.self_attn\.(query|key|value)\.", r"encoder.layer.\1.attention.self.\2.", COPY),
    (r"encoder\.layers\.(\d+)\.self_attn\.out_proj\.", r"encoder.layer.\1.attention.output.dense.", COPY),
    (r"encoder\.layers\.(\d+)\.norm1\.", r"encoder.layer.\1.attention.output.LayerNorm.", COPY),
    (r"encoder\.layers\.(\d+)\.feed_forward\.linear1\.", r"encoder.layer.\1.intermediate.dense.", COPY),
    (r"encoder\.layers\.(\d+)\.feed_forward\.linear2\.", r"encoder.layer.\1.output.dense.", COPY),
    (r"encoder\.layers\.(\d+)\.norm2\.", r"encoder.layer.\1.output.LayerNorm.", COPY),
]
GPT2_RULES = [
    (r"h\.(\d+)\.norm1\.", r"h.\1.ln_1.", COPY),
    (r"h\.(\d+)\.norm2\.", r"h.\1.ln_2.", COPY),
    (r"h\.(\d+)\.self_attn\.query\.", r"h.\1.attn.c_attn.", Q),
    (r"h\.(\d+)\.self_attn\.key\.", r"h.\1.attn.c_attn.", K),
    (r"h\.(\d+)\.self_attn\.value\.", r"h.\1.attn.c_attn.", V),
    (r"h\.(\d+)\.self_attn\.out_proj\.", r"h.\1.attn.c_proj.", CONV1D),
    (r"h\.(\d+)\.feed_forward\.linear1\.", r"h.\1.mlp.c_fc.", CONV1D),
    (r"h\.(\d+)\.feed_forward\.linear2\.", r"h.\1.mlp.c_proj.", CONV1D),
]
RULES = {"bert": BERT_RULES, "gpt2": GPT2_RULES}

# Tensors some checkpoints carry that are not parameters (buffers of old HF versions).
IGNORED_HF_KEYS = re.compile(
    r"(^|\.)(embeddings\.position_ids|attn\.bias|attn\.masked_bias|cls\.predictions\.decoder\.bias)$")


def hf_name(family: str, our_key: str) -> tuple:
    """(HF key, transform) for one of our parameter names."""
    for pattern, template, transform in RULES[family]:
        if re.search(pattern, our_key):
            return re.sub(pattern, template, our_key), transform
    return our_key, COPY


def to_ours(array: np.ndarray, transform, key: str) -> np.ndarray:
    """HF tensor -> our tensor: transpose Conv1D weights (in, out) -> (out, in); slice q/k/v out of c_attn."""
    is_weight = key.endswith("weight")
    if transform == CONV1D:
        return array.T if is_weight else array
    if transform in (Q, K, V):
        d = array.shape[-1] // 3
        piece = array[..., transform * d:(transform + 1) * d]
        return piece.T if is_weight else piece
    return array


def to_hf(array: np.ndarray, transform, key: str) -> np.ndarray:
    """Our tensor -> HF's (the q/k/v pieces are fused by the caller)."""
    if transform in (CONV1D, Q, K, V) and key.endswith("weight"):
        return array.T
    return array


# ------------------------------------------------------------------------------------------------ files
def read_config(directory: str) -> dict:
    path = os.path.join(directory, CONFIG_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {CONFIG_NAME} in '{directory}'")
    with open(path) as f:
        return json.load(f)


def read_weights(directory: str) -> tuple:
    """(path, {name: ndarray}) from model.safetensors, with legacy ``gamma``/``beta`` renamed."""
    path = os.path.join(directory, WEIGHTS_NAME)
    if not os.path.isfile(path):
        if os.path.isfile(os.path.join(directory, "pytorch_model.bin")):
            raise ValueError(
                f"'{directory}' has only pytorch_model.bin. minitx refuses to read it: it is a Python pickle, and "
                "unpickling a file can execute arbitrary code. Convert it once, where you trust the file: "
                "`from transformers import AutoModel; AutoModel.from_pretrained(d).save_pretrained(d, "
                "safe_serialization=True)` writes model.safetensors (plain tensors, no code).")
        raise FileNotFoundError(f"no {WEIGHTS_NAME} in '{directory}'")
    from safetensors.numpy import load_file

    tensors = {}
    for key, array in load_file(path).items():
        key = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", key)
        key = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", key)
        tensors[key] = array
    return path, tensors


# ------------------------------------------------------------------------------------------------ config
@dataclass
class PretrainedConfig:
    """Base of the model configs: ``from_dict`` reads an HF config.json (unknown keys ignored)."""

    @classmethod
    def from_dict(cls, d: dict):
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        if "id2label" in d and "num_labels" in names:
            kwargs["num_labels"] = len(d["id2label"])
        return cls(**kwargs)

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------------ models
class PreTrainedModel(Module):
    """A model that reads and writes HF checkpoints. Subclasses set:

    ``config_class``; ``family`` ("bert" or "gpt2": which rename table); ``base_model_prefix`` (the attribute
    holding the base model in head models, "" in the base model itself; ``hf_base_prefix`` its HF name);
    ``tied_keys`` (our names that alias another parameter, e.g. the LM head tied to the embeddings:
    HF does not store them).
    """

    config_class = None
    family = None
    base_model_prefix = ""
    hf_base_prefix = ""
    tied_keys = ()

    def init_weights(self, std: float) -> None:
        """HF's init: Linear/Embedding weights ~ N(0, std), biases 0, LayerNorm γ = 1, β = 0."""
        from minitx.nn import Embedding, LayerNorm, Linear
        from minitx.random import default_generator

        rng = default_generator()
        for module in self.modules():
            if isinstance(module, (Linear, Embedding)):
                module.weight.data[...] = rng.normal(0.0, std, module.weight.shape)
                if isinstance(module, Embedding) and module.padding_idx is not None:
                    module.weight.data[module.padding_idx] = 0.0
            if isinstance(module, Linear) and module.bias is not None:
                module.bias.data[...] = 0.0
            if isinstance(module, LayerNorm) and module.weight is not None:
                module.weight.data[...], module.bias.data[...] = 1.0, 0.0

    # -------------------------------------------------------------------------------------- names
    def hf_state_dict(self) -> dict:
        """Our parameters under HF names and layouts (tied ones left out), ready for safetensors."""
        out, fused = {}, {}
        for key, array in self.state_dict().items():
            if key in self.tied_keys:
                continue
            name, transform = hf_name(self.family, key)
            if transform in (Q, K, V):
                fused.setdefault(name, [None] * 3)[transform] = to_hf(array, transform, key)
            else:
                out[name] = to_hf(array, transform, key)
        for name, pieces in fused.items():
            out[name] = np.concatenate(pieces, axis=-1)  # [q | k | v] along the output axis
        return {k: np.ascontiguousarray(v) for k, v in out.items()}

    def load_hf_state_dict(self, tensors: dict, path: str = "<state dict>") -> None:
        """Copy HF-named tensors into our parameters; raise naming the file and key on any mismatch."""
        tensors, base_checkpoint = self._align_prefix(tensors)
        params = dict(self._named_parameters_all())
        used, missing, new_heads = set(), [], []
        for key, param in params.items():
            if key in self.tied_keys:
                continue
            name, transform = hf_name(self.family, key)
            if name not in tensors:
                if base_checkpoint and not key.startswith(self.base_model_prefix + "."):
                    new_heads.append(key)
                else:
                    missing.append(f"'{name}' (for our parameter '{key}')")
                continue
            array = to_ours(tensors[name], transform, key)
            if array.shape != param.shape:
                raise ValueError(f"safetensors file '{path}': tensor '{name}' has shape {tuple(tensors[name].shape)}, "
                                 f"which gives {array.shape} for our parameter '{key}', expected {param.shape}")
            param.data[...] = array.astype(param.dtype)
            used.add(name)
        if missing:
            raise KeyError(f"safetensors file '{path}' has no tensor " + ", no tensor ".join(missing))
        unexpected = [k for k in tensors if k not in used and not IGNORED_HF_KEYS.search(k)
                      and k not in self._hf_tied_names()]
        if unexpected:
            raise KeyError(f"safetensors file '{path}' has tensors that {type(self).__name__} does not use: {unexpected}")
        if new_heads:
            warnings.warn(f"{type(self).__name__}: '{path}' is a base-model checkpoint; these parameters keep their "
                          f"random init and need training: {new_heads}")

    def _named_parameters_all(self):
        for module_name, module in self.named_modules():
            for name, param in module._parameters.items():
                yield (f"{module_name}.{name}" if module_name else name), param

    def _hf_tied_names(self) -> set:
        return {hf_name(self.family, k)[0] for k in self.tied_keys}

    def _align_prefix(self, tensors: dict) -> dict:
        """(tensors renamed to carry exactly our base-model prefix, whether it was a base-model checkpoint)."""
        hf_prefix = self.hf_base_prefix + "."
        has_prefix = any(k.startswith(hf_prefix) for k in tensors)
        if not self.base_model_prefix and has_prefix:  # base model <- head checkpoint: keep the base only
            return {k[len(hf_prefix):]: v for k, v in tensors.items() if k.startswith(hf_prefix)}, False
        if self.base_model_prefix and not has_prefix:  # head model <- base checkpoint
            return {hf_prefix + k: v for k, v in tensors.items()}, True
        return tensors, False

    # -------------------------------------------------------------------------------------- files
    @classmethod
    def from_pretrained(cls, directory: str, **config_overrides):
        """Build the model from ``directory``'s config.json and load its model.safetensors (eval mode)."""
        config_dict = read_config(directory)
        config_dict.update(config_overrides)
        model = cls(cls.config_class.from_dict(config_dict))
        path, tensors = read_weights(directory)
        model.load_hf_state_dict(tensors, path)
        return model.eval()

    def save_pretrained(self, directory: str) -> None:
        """Write config.json and model.safetensors that ``transformers`` loads with no missing weights."""
        from safetensors.numpy import save_file

        os.makedirs(directory, exist_ok=True)
        config = self.config.to_hf_dict()
        config["architectures"] = [type(self).__name__]
        with open(os.path.join(directory, CONFIG_NAME), "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
        save_file(self.hf_state_dict(), os.path.join(directory, WEIGHTS_NAME), metadata={"format": "pt"})
