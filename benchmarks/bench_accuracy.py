"""float32 accuracy of first and second derivatives through lazykernels' torch reductions.

    python benchmarks/bench_accuracy.py [--m 200] [--n 300] [--batch 2] [--seed 0]
        [--cases Sum LogSumExp ...] [--backend CPU]

For each reduction (Sum, LogSumExp, LogSumExpWeight, SumSoftMaxWeight, Min, KMin, and
LogSumExpWeight2 / SumSoftMaxWeight3 with weights of dimension 2 / 3), a loss
``L(x) = ||reduction(F(x_i, y_j))||`` (a norm on top, batch dimensions, a weight where the
reduction takes one) is differentiated w.r.t. x with ``torch.func``: the value, the gradient
(``torch.func.grad``) and the Hessian (``torch.func.hessian``). The float64 dense torch
computation of the same loss is the truth; the table prints the relative error
``|a - truth| / |truth|`` (Frobenius norms) of lazykernels in float32 and of dense torch in
float32, and their ratio (ours / dense: at most 2 is the target, KeOps issue 12 item 5).

It is a script, not a test: tests/test_accuracy.py checks the same ratios at small sizes.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.func import grad, hessian

from lazykernels.torch import LazyTensor

TARGET = 2.0  # ours / dense torch float32 relative error


@dataclass(frozen=True)
class Case:
    """A loss of x written twice: with LazyTensors and densely."""

    name: str
    ours: Callable[..., torch.Tensor]
    dense: Callable[..., torch.Tensor]


def _lazy(x, y, b):
    return (
        LazyTensor(x[..., :, None, :]),
        LazyTensor(y[..., None, :, :]),
        LazyTensor(b[..., None, :, :]),
    )


def _dense(x, y, b):
    return x[..., :, None, :], y[..., None, :, :], b[..., None, :, :]


def _sqdist_lazy(x, y):
    return ((x - y) ** 2).sum(-1)


def _sqdist_dense(x, y):
    return ((x - y) ** 2).sum(-1, keepdim=True)


def _gauss_sum(x, y, b, backend, **opts):
    x_i, y_j, b_j = _lazy(x, y, b)
    return ((-_sqdist_lazy(x_i, y_j)).exp() * b_j).sum(dim=x.dim() - 1, backend=backend, **opts)


def _gauss_sum_dense(x, y, b):
    x_i, y_j, b_j = _dense(x, y, b)
    return ((-_sqdist_dense(x_i, y_j)).exp() * b_j).sum(-2)


def _lse(x, y, b, backend, **opts):
    x_i, y_j, _ = _lazy(x, y, b)
    return (-_sqdist_lazy(x_i, y_j)).logsumexp(dim=x.dim() - 1, backend=backend, **opts)


def _lse_dense(x, y, b):
    x_i, y_j, _ = _dense(x, y, b)
    return (-_sqdist_dense(x_i, y_j)).logsumexp(-2)


def _lse_weight(x, y, b, backend, **opts):
    x_i, y_j, b_j = _lazy(x, y, b)
    w_j = b_j * b_j + 0.5  # a positive weight
    return (-_sqdist_lazy(x_i, y_j)).logsumexp(dim=x.dim() - 1, weight=w_j, backend=backend, **opts)


def _lse_weight_dense(x, y, b):
    x_i, y_j, b_j = _dense(x, y, b)
    return (-_sqdist_dense(x_i, y_j) + (b_j * b_j + 0.5).log()).logsumexp(-2)


def _softmax(x, y, b, backend, **opts):
    x_i, y_j, b_j = _lazy(x, y, b)
    return (-_sqdist_lazy(x_i, y_j)).sumsoftmaxweight(
        b_j * y_j.sin().sum(-1), dim=x.dim() - 1, backend=backend, **opts
    )


def _softmax_dense(x, y, b):
    x_i, y_j, b_j = _dense(x, y, b)
    w = (-_sqdist_dense(x_i, y_j)).softmax(-2)
    return (w * b_j * y_j.sin().sum(-1, keepdim=True)).sum(-2)


def _min(x, y, b, backend, **opts):
    x_i, y_j, _ = _lazy(x, y, b)
    return _sqdist_lazy(x_i, y_j).min(dim=x.dim() - 1, backend=backend, **opts)


def _min_dense(x, y, b):
    x_i, y_j, _ = _dense(x, y, b)
    return _sqdist_dense(x_i, y_j).min(-2).values


def _kmin(x, y, b, backend, **opts):
    x_i, y_j, _ = _lazy(x, y, b)
    return _sqdist_lazy(x_i, y_j).Kmin(3, dim=x.dim() - 1, backend=backend, **opts)


def _kmin_dense(x, y, b):
    x_i, y_j, _ = _dense(x, y, b)
    return _sqdist_dense(x_i, y_j)[..., 0].topk(3, dim=-1, largest=False).values


def _lse_weight2(x, y, b, backend, **opts):
    x_i, y_j, b_j = _lazy(x, y, b)
    w_j = LazyTensor.concatenate([b_j, y_j[..., :1]]) ** 2 + 0.5  # positive, dimension 2
    return (-_sqdist_lazy(x_i, y_j)).logsumexp(dim=x.dim() - 1, weight=w_j, backend=backend, **opts)


def _lse_weight2_dense(x, y, b):
    x_i, y_j, b_j = _dense(x, y, b)
    w_j = torch.cat([b_j, y_j[..., :1]], -1) ** 2 + 0.5
    return (-_sqdist_dense(x_i, y_j) + w_j.log()).logsumexp(-2)


def _softmax3(x, y, b, backend, **opts):
    x_i, y_j, b_j = _lazy(x, y, b)
    return (-_sqdist_lazy(x_i, y_j)).sumsoftmaxweight(
        b_j * y_j.sin(), dim=x.dim() - 1, backend=backend, **opts
    )


def _softmax3_dense(x, y, b):
    x_i, y_j, b_j = _dense(x, y, b)
    w = (-_sqdist_dense(x_i, y_j)).softmax(-2)
    return (w * b_j * y_j.sin()).sum(-2)


CASES = {
    c.name: c
    for c in (
        Case("Sum", _gauss_sum, _gauss_sum_dense),
        Case("LogSumExp", _lse, _lse_dense),
        Case("LogSumExpWeight", _lse_weight, _lse_weight_dense),
        Case("SumSoftMaxWeight", _softmax, _softmax_dense),
        Case("Min", _min, _min_dense),
        Case("KMin", _kmin, _kmin_dense),
        # weights of dimension > 1 (the log-sum-exp gradient normalised per component)
        Case("LogSumExpWeight2", _lse_weight2, _lse_weight2_dense),
        Case("SumSoftMaxWeight3", _softmax3, _softmax3_dense),
    )
}


def inputs(m: int, n: int, batch: int, seed: int, scale: float = 1.0, dtype=torch.float64):
    """x (B, M, 3), y (B, N, 3) (standard normal times ``scale``), b (B, N, 1) in float64
    (the truth is computed from them), all exactly representable in float32."""
    gen = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(batch, m, 3, generator=gen, dtype=dtype)
    y = scale * torch.randn(batch, n, 3, generator=gen, dtype=dtype)
    b = torch.randn(batch, n, 1, generator=gen, dtype=dtype)
    return tuple(t.float().double() for t in (x, y, b))


def derivatives(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, hess: bool):
    """(reduction output, gradient, Hessian or None) of the loss ``||fn(x)||`` at ``x``."""

    def loss(x):
        return fn(x).norm()

    return fn(x), grad(loss)(x), hessian(loss)(x) if hess else None


def rel_error(a: torch.Tensor, truth: torch.Tensor) -> float:
    truth = truth.double()
    scale = truth.norm().item()
    return (a.double() - truth).norm().item() / (scale if scale > 0 else 1.0)


def measure(
    case: Case,
    m: int,
    n: int,
    batch: int,
    seed: int,
    backend: str,
    scale: float = 1.0,
    hess: bool = True,
    wrt: str = "x",
    **opts,
):
    """{"value"|"grad"|"hessian": (ours float32 error, dense float32 error)}; the
    derivatives are taken w.r.t. ``x`` (output-index points) or ``y`` (reduced ones)."""
    x, y, b = inputs(m, n, batch, seed, scale)

    def loss_of(fn, x, y, b):
        return (lambda v: fn(v, y, b)) if wrt == "x" else (lambda v: fn(x, v, b))

    def at(x, y):
        return x if wrt == "x" else y

    truth = derivatives(loss_of(case.dense, x, y, b), at(x, y), hess)
    x32, y32, b32 = x.float(), y.float(), b.float()
    dense32 = derivatives(loss_of(case.dense, x32, y32, b32), at(x32, y32), hess)

    def ours(x, y, b):
        return case.ours(x, y, b, backend, **opts)

    ours32 = derivatives(loss_of(ours, x32, y32, b32), at(x32, y32), hess)
    names = ("value", "grad", "hessian")
    return {
        name: (rel_error(o, t), rel_error(d, t))
        for name, t, d, o in zip(names, truth, dense32, ours32)
        if t is not None
    }


def table(results: dict[str, dict[str, tuple[float, float]]]) -> list[str]:
    lines = [
        f"{'reduction':18s} {'order':8s} {'ours f32':>10s} {'torch f32':>10s} {'ratio':>7s}  result"
    ]
    for name, orders in results.items():
        for order, (ours, dense) in orders.items():
            ratio = ours / dense if dense > 0 else (math.inf if ours > 0 else 1.0)
            ok = ours <= TARGET * dense
            lines.append(
                f"{name:18s} {order:8s} {ours:10.2e} {dense:10.2e} {ratio:7.2f}  "
                f"{'PASS' if ok else 'FAIL'}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=200)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="CPU")
    parser.add_argument("--scale", type=float, default=1.0, help="spread of x and y")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--wrt", default="x", choices=["x", "y"], help="differentiate w.r.t.")
    parser.add_argument("--dtype-acc", default=None, help="dtype_acc of the sum-type reductions")
    parser.add_argument("--sum-scheme", default=None, help="sum_scheme of the sum-type ones")
    args = parser.parse_args(argv)
    opts = {k: v for k, v in (("dtype_acc", args.dtype_acc), ("sum_scheme", args.sum_scheme)) if v}
    t0 = time.perf_counter()
    print(
        f"float32 relative errors against float64 dense torch, M={args.m} N={args.n} "
        f"B={args.batch} D=3 seed={args.seed} backend={args.backend}; target ours <= "
        f"{TARGET:g} x torch"
    )
    results = {
        name: measure(
            CASES[name],
            args.m,
            args.n,
            args.batch,
            args.seed,
            args.backend,
            args.scale,
            wrt=args.wrt,
            **(opts if name not in ("Min", "KMin") else {}),
        )
        for name in args.cases
    }
    lines = table(results)
    print("\n".join(lines))
    failed = sum(line.endswith("FAIL") for line in lines)
    print(f"{len(lines) - 1 - failed} PASS / {failed} FAIL; {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
