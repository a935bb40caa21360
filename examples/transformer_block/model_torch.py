"""The PyTorch original: a small pre-LN transformer, written with torch.nn modules.

    x ← x + MultiheadAttention(LayerNorm(x))     (4 heads, causal mask)
    x ← x + Linear(GELU(Linear(LayerNorm(x))))   (MLP 96 → 384 → 96, exact GELU)

``TransformerBlock`` is one such block (d_model 96, 4 heads, MLP 384: 111,840 parameters);
``Model`` is ``N_BLOCKS`` of them (one), a final LayerNorm and a linear read-out to one
number per token: 112,129 parameters. It takes one sequence of tokens, shape (L, 96),
unbatched, and returns (L,).

Parameter names: ``state_names(module)`` maps each ``state_dict`` key to an identifier
(``blocks.0.attn.in_proj_weight`` → ``blocks_0_attn_in_proj_weight``); those identifiers are
the names in weights.npz, in the gradcmp loss files and in the JAX port.
"""

from __future__ import annotations

import torch
from torch import nn

D_MODEL = 96
N_HEADS = 4
D_MLP = 384
N_BLOCKS = 1
SEED = 0


class TransformerBlock(nn.Module):
    """Pre-LN block: LayerNorm → self-attention → residual → LayerNorm → MLP → residual."""

    def __init__(self, d_model=D_MODEL, n_heads=N_HEADS, d_mlp=D_MLP, dtype=torch.float64):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model, dtype=dtype)  # eps 1e-5
        self.attn = nn.MultiheadAttention(d_model, n_heads, batch_first=True, dtype=dtype)
        self.ln2 = nn.LayerNorm(d_model, dtype=dtype)
        self.fc1 = nn.Linear(d_model, d_mlp, dtype=dtype)
        self.act = nn.GELU()  # approximate="none": the exact, erf form
        self.fc2 = nn.Linear(d_mlp, d_model, dtype=dtype)

    def forward(self, x, mask=None):
        h = self.ln1(x)
        # need_weights=True takes MultiheadAttention's explicit path (baddbmm, softmax, bmm)
        # rather than a fused scaled_dot_product_attention kernel.
        a, _ = self.attn(h, h, h, attn_mask=mask, need_weights=True, average_attn_weights=False)
        x = x + a
        return x + self.fc2(self.act(self.fc1(self.ln2(x))))


class Model(nn.Module):
    """``N_BLOCKS`` transformer blocks, a final LayerNorm and a read-out: (L, d) → (L,)."""

    def __init__(self, n_blocks=N_BLOCKS, causal=True, dtype=torch.float64):
        super().__init__()
        self.causal = causal
        self.blocks = nn.ModuleList(TransformerBlock(dtype=dtype) for _ in range(n_blocks))
        self.ln_f = nn.LayerNorm(D_MODEL, dtype=dtype)
        self.head = nn.Linear(D_MODEL, 1, dtype=dtype)

    def forward(self, tokens):
        n = tokens.shape[0]
        # True above the diagonal: token t attends to tokens 0..t only.
        mask = torch.ones(n, n, dtype=torch.bool).triu(1) if self.causal else None
        x = tokens
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.ln_f(x)).squeeze(-1)


def build(seed=SEED, causal=True) -> Model:
    """The model with its seeded initial weights (float64), in eval mode (there is no dropout
    anyway)."""
    torch.manual_seed(seed)
    return Model(causal=causal).eval()


def state_names(module: nn.Module) -> dict[str, str]:
    """identifier → state_dict key, for every parameter of ``module``."""
    names = {key.replace(".", "_"): key for key in module.state_dict()}
    if len(names) != len(module.state_dict()):
        raise ValueError("two state_dict keys map to the same identifier")
    return names


if __name__ == "__main__":
    model = build()
    block = sum(p.numel() for p in model.blocks[0].parameters())
    total = sum(p.numel() for p in model.parameters())
    print(f"one block: {block:,} parameters; the model: {total:,}")
    for name, key in state_names(model).items():
        print(f"  {name:<34} {tuple(model.state_dict()[key].shape)}")
