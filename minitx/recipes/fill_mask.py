"""Fill in ``[MASK]``: what a masked language model predicts at each masked position."""
import numpy as np

import minitx
from minitx.reference import softmax_forward


def fill_mask(model, tokenizer, text: str, top_k: int = 3) -> list:
    """For each [MASK] in ``text``: the ``top_k`` (token, probability) pairs, most likely first.

    ``model``: BertForPreTraining or BertForMaskedLM (anything returning ``prediction_logits`` or ``logits``).
    """
    if tokenizer.mask_token not in text:
        raise ValueError(f"fill_mask: the text has no {tokenizer.mask_token} token: {text!r}")
    enc = tokenizer(text)
    ids = np.asarray([enc["input_ids"]])                                   # (1, L)
    model.eval()
    with minitx.no_grad():
        out = model(ids, attention_mask=np.asarray([enc["attention_mask"]]),
                    token_type_ids=np.asarray([enc["token_type_ids"]]))
    logits = out.prediction_logits if getattr(out, "prediction_logits", None) is not None else out.logits
    probs = softmax_forward(logits.numpy()[0])                              # (L, V)
    mask_id = tokenizer.mask_token_id
    results = []
    for position in np.flatnonzero(ids[0] == mask_id):
        best = np.argsort(-probs[position])[:top_k]
        results.append([(tokenizer.convert_ids_to_tokens([int(i)])[0], float(probs[position, i])) for i in best])
    return results
