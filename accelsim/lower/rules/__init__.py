"""The lowering rules, one module per ATen op family; importing this package registers them all."""

from accelsim.lower.rules import conv, einsum, elementwise, matmul, movement, norm, pool, recurrent, select

__all__ = ["conv", "einsum", "elementwise", "matmul", "movement", "norm", "pool", "recurrent", "select"]
