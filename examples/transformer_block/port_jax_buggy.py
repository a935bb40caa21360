"""The JAX port of model_torch.Model with one planted bug (the line marked PLANTED).

The names are model_torch's ``state_dict`` keys with dots turned into underscores
(``blocks.0.attn.in_proj_weight`` → ``blocks_0_attn_in_proj_weight``) and every array has the
shape PyTorch gives it: a Linear's weight is (out, in), so a layer is ``x @ W.T + b``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

N_HEADS = 4
LN_EPS = 1e-5  # torch.nn.LayerNorm's default


def layer_norm(p, name, x):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.var(x, axis=-1, keepdims=True)  # biased, as torch's layer norm
    normed = (x - mean) / jnp.sqrt(var + LN_EPS)
    return normed * p[f"{name}_weight"] + p[f"{name}_bias"]


def linear(p, name, x):
    return x @ p[f"{name}_weight"].T + p[f"{name}_bias"]


def attention(p, name, x, mask):
    """torch.nn.MultiheadAttention(batch_first=True) on one unbatched sequence (L, d)."""
    n, d = x.shape
    head = d // N_HEADS
    qkv = x @ p[f"{name}_in_proj_weight"].T + p[f"{name}_in_proj_bias"]
    q, k, v = (t.reshape(n, N_HEADS, head).transpose(1, 0, 2) for t in jnp.split(qkv, 3, -1))
    scores = (q * math.sqrt(1.0 / head)) @ k.transpose(0, 2, 1) + mask
    weights = jax.nn.softmax(scores, axis=-1)
    out = (weights @ v).transpose(1, 0, 2).reshape(n, d)
    return linear(p, f"{name}_out_proj", out)


def mlp(p, name, x):
    h = linear(p, f"{name}_fc1", x)
    h = jax.nn.gelu(h)  # PLANTED: jax.nn.gelu defaults to the tanh form; nn.GELU() is exact
    return linear(p, f"{name}_fc2", h)


def block(p, name, x, mask):
    x = x + attention(p, f"{name}_attn", layer_norm(p, f"{name}_ln1", x), mask)
    return x + mlp(p, name, layer_norm(p, f"{name}_ln2", x))


def causal_mask(n, dtype, causal=True):
    """0 where token t may attend to token s (s ≤ t), −inf above the diagonal."""
    if not causal:
        return jnp.zeros((n, n), dtype)
    return jnp.where(jnp.triu(jnp.ones((n, n), bool), k=1), -jnp.inf, 0.0).astype(dtype)


def forward(params, tokens, causal=True):
    """(L, d) tokens → (L,) predictions, as model_torch.Model."""
    mask = causal_mask(tokens.shape[0], tokens.dtype, causal)
    n_blocks = len({key.split("_")[1] for key in params if key.startswith("blocks_")})
    x = tokens
    for i in range(n_blocks):
        x = block(params, f"blocks_{i}", x, mask)
    return linear(params, "head", layer_norm(params, "ln_f", x))[:, 0]
