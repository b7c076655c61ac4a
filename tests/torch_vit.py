#!/usr/bin/env python3
# torch_vit.py: the PyTorch twin of fedvim's "vit" model (shared/nn/models.c build_vit), written
# here from the paper's description (Dosovitskiy et al. 2021) with timm's state-dict names so that
# fedvim's tensors map 1:1: patch_embed.proj (conv, kernel = stride = patch), cls_token [1, 1, D],
# pos_embed [1, T, D], blocks.i.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}, norm, head.
# Pre-norm blocks, exact GELU, LayerNorm eps 1e-5, no dropout. Used by tests/torch_parity.py and
# experiments/bench/torch_zoo.py.
#   python3 tests/torch_vit.py   prints the parameter counts for 1x28x28 and 3x32x32, 10 classes
import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(s, dim, heads):
        super().__init__()
        s.heads = heads
        s.qkv = nn.Linear(dim, 3 * dim)
        s.proj = nn.Linear(dim, dim)

    def forward(s, x):
        N, T, D = x.shape
        qkv = s.qkv(x).reshape(N, T, 3, s.heads, D // s.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [N, H, T, dh]
        a = (q @ k.transpose(-2, -1)) * (D // s.heads) ** -0.5
        a = a.softmax(dim=-1)
        return s.proj((a @ v).transpose(1, 2).reshape(N, T, D))


class Mlp(nn.Module):
    def __init__(s, dim, hidden):
        super().__init__()
        s.fc1 = nn.Linear(dim, hidden)
        s.fc2 = nn.Linear(hidden, dim)

    def forward(s, x):
        return s.fc2(F.gelu(s.fc1(x)))


class Block(nn.Module):
    def __init__(s, dim, heads, hidden):
        super().__init__()
        s.norm1 = nn.LayerNorm(dim, eps=1e-5)
        s.attn = Attention(dim, heads)
        s.norm2 = nn.LayerNorm(dim, eps=1e-5)
        s.mlp = Mlp(dim, hidden)

    def forward(s, x):
        x = x + s.attn(s.norm1(x))
        return x + s.mlp(s.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(s, c, dim, patch):
        super().__init__()
        s.proj = nn.Conv2d(c, dim, patch, patch)

    def forward(s, x):
        return s.proj(x).flatten(2).transpose(1, 2)  # [N, P, D], patches in row-major order


class ViT(nn.Module):
    def __init__(s, c, hw, classes=10, patch=4, dim=192, depth=6, heads=3, hidden=768):
        super().__init__()
        s.patch_embed = PatchEmbed(c, dim, patch)
        T = (hw // patch) ** 2 + 1
        s.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        s.pos_embed = nn.Parameter(torch.zeros(1, T, dim))
        nn.init.normal_(s.cls_token, std=0.02)
        nn.init.normal_(s.pos_embed, std=0.02)
        s.blocks = nn.Sequential(*[Block(dim, heads, hidden) for _ in range(depth)])
        s.norm = nn.LayerNorm(dim, eps=1e-5)
        s.head = nn.Linear(dim, classes)

    def forward(s, x):
        x = s.patch_embed(x)
        x = torch.cat([s.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + s.pos_embed
        x = s.norm(s.blocks(x))
        return s.head(x[:, 0])


if __name__ == '__main__':
    for c, hw in [(1, 28), (3, 32)]:
        m = ViT(c, hw)
        print(f'{c}x{hw}x{hw}: {sum(p.numel() for p in m.parameters())} parameters')
