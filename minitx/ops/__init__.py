"""Differentiable ops, one family per file, and the functions that build them from Tensors.

    elementwise.py  + - * / pow neg exp log sqrt abs tanh sigmoid relu gelu
    reduce.py       sum mean max min var
    matmul.py       @ (batched, broadcasting)
    shape.py        reshape permute expand concat stack contiguous
    indexing.py     x[i] where masked_fill
    nn_ops.py       softmax log_softmax layer_norm dropout embedding cross_entropy
    attention.py    scaled_dot_product_attention (fused and unfused)
    dims.py         the one rule for dim arguments
    functions.py    the function forms: mx.cat, mx.stack, mx.where, mx.exp, ...

The op families import only ``minitx.autograd`` (Function) and each other, never ``minitx.tensor``, so the
imports run one way: tensor.py -> ops -> autograd.py.
"""
