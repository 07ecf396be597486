"""Each op kind's float path equals torch: small modules lowered by accelsim.lower, executed with
float units (``ArithmeticConfig.float_units``), compared with the module's own output."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from accelsim.config.arithmetic import ArithmeticConfig  # noqa: E402
from accelsim.eval.bittrue import BittrueStats, execute  # noqa: E402
from accelsim.ir import OpKind  # noqa: E402

FLOAT = ArithmeticConfig.float_units(la_divisor="true_divide")


class Movement(nn.Module):
    """reshape/view/flatten/unsqueeze/expand, permute/transpose, cat/stack, slice/select/split/chunk/
    unbind/narrow, pad, roll/flip/repeat, index_select; eltwise add/sub/rsub/mul/div/max/where."""

    def __init__(self) -> None:
        super().__init__()
        self.tok = nn.Parameter(torch.randn(1, 1, 6))
        self.pos = nn.Parameter(torch.randn(1, 5, 6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 4, 6)
        b = x.shape[0]
        t = torch.cat([self.tok.expand(b, -1, -1), x], dim=1) + self.pos  # (B, 5, 6)
        a, c = t.chunk(2, dim=-1)  # (B, 5, 3) x 2
        p, q, r = t.reshape(b, 5, 3, 2).permute(2, 0, 1, 3).unbind(0)  # (B, 5, 2) x 3
        s = torch.stack([p, q * 0.5, 2.0 - r], dim=1).transpose(1, 2).flatten(2)  # (B, 5, 6)
        u = t[:, 1:4, ::2] - t.narrow(1, 0, 3)[..., 1::2] / 3.0  # (B, 3, 3)
        v = F.pad(u, (0, 1, 1, 0), value=1.0).roll(1, dims=2).flip(1)  # (B, 4, 4)
        w = torch.maximum(a, c).select(1, 0).unsqueeze(1).repeat(1, 2, 1)  # (B, 2, 3)
        idx = torch.tensor([2, 0])
        z = torch.where(s > 0, s, s * 0.1).index_select(1, idx)  # (B, 2, 6)
        parts = torch.split(t, [2, 3], dim=1)
        return torch.cat(
            [z.flatten(1), w.flatten(1), v.flatten(1), u.flatten(1), parts[1].sum(1), parts[0][:, 0]], 1
        )


class Convs(nn.Module):
    """conv2d (stride, padding, dilation, groups, bias), dwconv2d, unfused batchnorm, pools, activations."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.dw = nn.Conv2d(8, 8, 5, padding=2, groups=8, bias=False)
        self.g = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2)
        self.pw = nn.Conv2d(8, 12, 1)
        self.bn = nn.BatchNorm2d(12)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-1, 1)
            self.bn.running_var.uniform_(0.5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.hardswish(self.c1(x))
        y = F.silu(self.dw(y)) + F.relu6(self.g(y))
        y = torch.relu(y)
        y = self.bn(torch.sigmoid(self.pw(y)) * 3 - 1)  # not foldable: the BN does not follow the conv
        a = F.avg_pool2d(y, 2)
        m = F.max_pool2d(y, 3, stride=2, padding=1)
        g = F.adaptive_avg_pool2d(y, 1).flatten(1)
        return torch.cat([a.flatten(1), m.flatten(1), g, torch.tanh(y.mean(dim=(2, 3)))], 1)


class Attention(nn.Module):
    """linear (NK weights, bias), layernorm, the two activation x activation matmuls, softmax, GELU."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(16)
        self.qkv = nn.Linear(16, 48)
        self.fc = nn.Linear(16, 16)
        self.fc2 = nn.Linear(16, 16, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 7, 16)
        b, n, c = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, n, 3, 2, 8).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = ((q * 8**-0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        y = (attn @ v).transpose(1, 2).reshape(b, n, c) + x
        return self.fc2(F.gelu(self.fc(y))) + F.gelu(y, approximate="tanh")


class LinearAttention(nn.Module):
    """EfficientViT's ReLU linear attention (fused by lowering into one ``linear_attention`` op)."""

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        k, v = torch.roll(q, 1, dims=2) * 0.7, torch.flip(q, dims=(3,))
        q, k = F.relu(q), F.relu(k)
        v = F.pad(v, (0, 1), mode="constant", value=1.0)
        out = q @ (k.transpose(-1, -2) @ v)
        return out[..., :-1] / (out[..., -1:] + 1e-5)


class Norms(nn.Module):
    """L2-normalised q/k as cosine attention and XCiT use them (``F.normalize``), a max norm and a
    group norm (PoolFormer)."""

    def __init__(self) -> None:
        super().__init__()
        self.gn = nn.GroupNorm(2, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 4, 6, 5)
        y = F.normalize(x, dim=-1) * torch.linalg.vector_norm(x, ord=float("inf"), dim=(2, 3), keepdim=True)
        return self.gn(y)


CASES = [
    ("movement", Movement, (2, 4, 6)),
    ("norms", Norms, (2, 4, 6, 5)),
    ("convs", Convs, (2, 3, 12, 12)),
    ("attention", Attention, (2, 7, 16)),
    ("linear_attention", LinearAttention, (2, 2, 9, 4)),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "cls", "shape"), CASES, ids=[c[0] for c in CASES])
def test_float_path_equals_torch(name: str, cls: type, shape: tuple[int, ...]) -> None:
    from accelsim.lower import lower

    torch.manual_seed(0)
    model = cls().eval()
    g = lower(model, (1, *shape[1:]), keep_constants=True)
    x = torch.randn(*shape)
    with torch.no_grad():
        ref = model(x).numpy()
    stats = BittrueStats()
    # the graph was lowered at batch 1 and runs at batch 2: shapes scale with the batch
    out = execute(g, {g.inputs[0]: x.numpy()}, FLOAT, stats=stats)[g.outputs[0]]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=2e-6)
    assert not stats.integer_ops
    kinds = {op.kind for op in g.ops()}
    if name == "linear_attention":
        assert OpKind.LINEAR_ATTENTION in kinds
    if name == "convs":
        assert {OpKind.CONV2D, OpKind.DWCONV2D, OpKind.BATCHNORM, OpKind.POOL} <= kinds
    if name == "movement":
        want = {OpKind.RESHAPE, OpKind.TRANSPOSE, OpKind.CONCAT, OpKind.SLICE, OpKind.PAD, OpKind.GATHER}
        assert want <= kinds
