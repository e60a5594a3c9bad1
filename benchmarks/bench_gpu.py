"""GPU benchmark (issue #11, item 8): lazykernels' CUDA backend against dense torch on the
same GPU, chunked ``cdist`` + ``topk``, KeOps GPU and FAISS GPU when they can be imported.

    python benchmarks/bench_gpu.py [--dry] [--quick] [--repeats 5] [--json PATH]

Cases: Gaussian sum (D=3, float32) at N = 3e4, 1e5, 1e6 (M = N) and its gradient w.r.t.
x; LogSumExp of the same kernel; ArgKMin K=10 at D=3 and D=50 with N = 1e6 (recall vs the
exact chunked torch result; D=50 is a looped dimension on CUDA); the Gaussian sum at M = 1e3,
N = 1e6 with ``backend="GPU_2D"`` and ``"GPU_1D"`` (few rows, many columns: the 2D scheme's
case, and what ``"GPU"`` would choose); the first call of a new formula in a fresh cache. Every row
names the GPU and gives the fraction of its FP32 peak: pairs/s x flops per pair (each
+, -, *, exp counted once; the table :data:`FLOPS`) / (2 x FP32 lanes x clock). Times are
the best of ``--repeats`` after a warm-up, synchronised; nothing is asserted.

Without a GPU the script exits with status 1 and the reason (nothing is measured);
``--dry`` needs no GPU: it builds every case's plan, prints its CUDA kernel and compiles it
with NVRTC for sm_90 (both passes of a 2D-scheme row; or records why the CUDA kernel cannot
print it), then exits 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# FP32 lanes per SM by compute capability (CUDA C Programming Guide, arithmetic throughput)
LANES = {(7, 0): 64, (7, 5): 64, (8, 0): 64, (8, 6): 128, (8, 7): 128, (8, 9): 128}
LANES_DEFAULT = 128  # sm_90, sm_100, sm_120
FLOPS = {  # per (i, j) pair, D the dimension: D sub + D mul + (D-1) add, then the rest
    "gauss": lambda d: 3 * d - 1 + 4,  # * gamma, exp, * b, accumulate
    "gauss_grad": lambda d: 3 * d - 1 + 4 + 3 * d + 2,  # forward + (x - y) * weight terms
    "lse": lambda d: 3 * d - 1 + 5,  # * gamma, max, sub, exp, accumulate
    "knn": lambda d: 3 * d - 1 + 1,  # distance, compare
}
ALIASES = ["x = Vi(D)", "y = Vj(D)", "b = Vj(1)", "g = Pm(1)"]
GAUSS = "Exp(-g * SqDist(x, y)) * b"
LSE = "-g * SqDist(x, y)"


def cases(quick: bool) -> list[dict[str, Any]]:
    """The benchmark rows: name, kind (FLOPS key), reduction, D, N, M (None: N), K, backend."""
    sizes = [3000, 10000] if quick else [30000, 100000, 1000000]
    rows = [dict(case="gauss", red="Sum", d=3, n=n, k=None) for n in sizes]
    big = sizes[-1]
    rows += [
        dict(case="gauss_grad", red="Sum", d=3, n=sizes[-2], k=None),
        dict(case="lse", red="LogSumExp", d=3, n=sizes[-2], k=None),
        dict(case="knn", red="ArgKMin", d=3, n=big, k=10),
        dict(case="knn", red="ArgKMin", d=50, n=big if not quick else 3000, k=10),
    ]
    few = 1000 if not quick else 100
    rows += [dict(case="gauss", red="Sum", d=3, n=big, m=few, k=None, backend=b) for b in SCHEMES]
    for row in rows:
        row.setdefault("m", None)
        row.setdefault("backend", "GPU")
    return rows


SCHEMES = ("GPU_2D", "GPU_1D")  # the few-rows rows: both schemes, explicitly


def _aliases(d: int) -> list[str]:
    return [a.replace("D", str(d)) for a in ALIASES]


def _formula(row: dict[str, Any]) -> tuple[str, list[str]]:
    if row["case"] in ("gauss", "gauss_grad"):
        return GAUSS, _aliases(row["d"])
    if row["case"] == "lse":
        return LSE, [a for a in _aliases(row["d"]) if not a.startswith("b")]
    return "SqDist(x, y)", _aliases(row["d"])[:2]


def dry(args: argparse.Namespace) -> int:
    """Build each case's plan and CUDA kernel and compile it with NVRTC (no GPU)."""
    from lazykernels.core.genred import build_plan
    from lazykernels.cuda import nvrtc
    from lazykernels.cuda.runner import kernel_source, scheme_for
    from lazykernels.errors import LazyKernelsError

    report = []
    for row in cases(args.quick):
        formula, aliases = _formula(row)
        plan = build_plan(formula, aliases, reduction_op=row["red"], axis=1, opt_arg=row["k"])
        m = row["m"] or row["n"]
        scheme = scheme_for(row["backend"], m, row["n"])
        try:
            ks = kernel_source(plan, "float32", scheme=scheme)
            sizes = [len(nvrtc.compile_source(k.source, "sm_90").cubin) for k in _passes(ks)]
            status = (
                f"{scheme} scheme, block {ks.block}, compiles for sm_90 "
                f"({' + '.join(map(str, sizes))} bytes of cubin)"
            )
        except LazyKernelsError as exc:
            status = f"not measurable: {exc}"
        report.append(
            {
                **row,
                "scheme": scheme,
                "flops_per_pair": FLOPS[row["case"]](row["d"]),
                "status": status,
            }
        )
        print(
            f"{row['case']:<11} {row['red']:<10} D={row['d']:<3} M={m:<8.0e} N={row['n']:<8.0e} "
            f"{row['backend']:<7} {status}"
        )
    _write(args.json, {"dry": True, "rows": report})
    return 0


def _passes(ks: Any) -> list[Any]:
    """The kernels of one launch: the 1D kernel, or the 2D scheme's two passes."""
    return [ks] if ks.merge is None else [ks, ks.merge]


def _write(path: str | None, data: dict[str, Any]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data, indent=2, default=str) + "\n")
        print(f"wrote {path}")


class Gpu:
    """The GPU under test: its name and FP32 peak (flop/s, an FMA counted as 2)."""

    def __init__(self) -> None:
        from lazykernels.cuda import driver

        dev = driver.device(0)
        attr = driver.init().CUdevice_attribute
        self.name, self.capability = dev.name, dev.capability
        try:
            sms = dev.attribute(attr.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            clock_khz = dev.attribute(attr.CU_DEVICE_ATTRIBUTE_CLOCK_RATE)
        except Exception as exc:  # an attribute this driver does not report
            print(f"no FP32 peak: {exc}")
            self.peak = None
            return
        lanes = LANES.get(dev.capability, LANES_DEFAULT)
        self.peak = 2.0 * sms * lanes * clock_khz * 1e3


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best wall time of ``fn`` (synchronised) over ``repeats`` calls after one warm-up."""
    import torch

    result = fn()
    torch.cuda.synchronize()
    best = math.inf
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        result = fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _attempt(label: str, fn: Callable[[], Any], repeats: int) -> dict[str, Any]:
    import torch

    try:
        seconds, result = timed(fn, repeats)
    except Exception as exc:  # a baseline that cannot run here (OOM, no nvcc...) is a note
        text = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        torch.cuda.empty_cache()
        return {f"{label}_seconds": None, f"{label}_note": text, f"{label}_result": None}
    return {f"{label}_seconds": seconds, f"{label}_result": result}


def _dense(row, x, y, b, g):
    import torch

    if row["case"] == "gauss":
        return lambda: torch.exp(-g * torch.cdist(x, y) ** 2) @ b
    if row["case"] == "lse":
        return lambda: torch.logsumexp(-g * torch.cdist(x, y) ** 2, dim=1, keepdim=True)
    if row["case"] == "gauss_grad":

        def grad():
            xx = x.detach().requires_grad_()
            return torch.autograd.grad((torch.exp(-g * torch.cdist(xx, y) ** 2) @ b).sum(), xx)

        return grad

    def chunked(chunk: int = 4096):
        parts = []
        for s in range(0, len(x), chunk):
            parts.append(torch.cdist(x[s : s + chunk], y).topk(row["k"], largest=False).indices)
        return torch.cat(parts)

    return chunked


def _ours(row, x, y, b, g):
    import torch

    from lazykernels.torch import Genred

    formula, aliases = _formula(row)
    routine = Genred(formula, aliases, reduction_op=row["red"], axis=1, opt_arg=row["k"])
    backend = row["backend"]
    if row["case"] == "gauss":
        return lambda: routine(x, y, b, g, backend=backend)
    if row["case"] == "lse":
        return lambda: routine(x, y, g, backend=backend)
    if row["case"] == "gauss_grad":

        def grad():
            xx = x.detach().requires_grad_()
            return torch.autograd.grad(routine(xx, y, b, g, backend=backend).sum(), xx)

        return grad
    return lambda: routine(x, y, backend=backend)


def _keops(row, x, y, b, g):
    from pykeops.torch import Genred as KeOpsGenred  # noqa: I001 (optional)

    formula, aliases = _formula(row)
    routine = KeOpsGenred(formula, aliases, reduction_op=row["red"], axis=1, opt_arg=row["k"])
    backend = row["backend"]  # KeOps's names: GPU, GPU_1D, GPU_2D
    if row["case"] == "gauss":
        return lambda: routine(x, y, b, g, backend=backend)
    if row["case"] == "lse":
        return lambda: routine(x, y, g, backend=backend)
    return lambda: routine(x, y, backend=backend)  # knn


def _faiss(row, x, y):
    import faiss  # optional

    res = faiss.StandardGpuResources()
    index = faiss.GpuIndexFlatL2(res, row["d"])
    index.add(y.cpu().numpy())
    queries = x.cpu().numpy()
    return lambda: index.search(queries, row["k"])[1]


def _recall(found: Any, exact: Any) -> float | None:
    if found is None or exact is None:
        return None
    found = np.asarray(found.cpu() if hasattr(found, "cpu") else found).reshape(len(exact), -1)
    exact = np.asarray(exact.cpu())
    hits = sum(len(set(a) & set(b)) for a, b in zip(found.tolist(), exact.tolist()))
    return hits / exact.size


def measure(row: dict[str, Any], gpu: Gpu, repeats: int) -> dict[str, Any]:
    import torch

    rng = torch.Generator(device="cuda").manual_seed(0)
    n, d = row["n"], row["d"]
    m = row["m"] or n
    x = torch.rand(m, d, device="cuda", generator=rng)
    y = torch.rand(n, d, device="cuda", generator=rng)
    b = torch.rand(n, 1, device="cuda", generator=rng)
    g = torch.tensor([2.0], device="cuda")
    out: dict[str, Any] = {**row, "gpu": gpu.name}
    out.update(_attempt("ours", _ours(row, x, y, b, g), repeats))
    out.update(_attempt("torch", _dense(row, x, y, b, g), repeats))
    if row["case"] != "gauss_grad":
        try:
            out.update(_attempt("keops", _keops(row, x, y, b, g), repeats))
        except Exception as exc:
            out["keops_note"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    if row["case"] == "knn":
        try:
            out.update(_attempt("faiss", _faiss(row, x, y), repeats))
        except Exception as exc:
            out["faiss_note"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        exact = out.get("torch_result")
        for who in ("ours", "keops", "faiss"):
            out[f"{who}_recall"] = _recall(out.get(f"{who}_result"), exact)
    elif out.get("ours_result") is not None and out.get("torch_result") is not None:
        a = out["ours_result"][0] if isinstance(out["ours_result"], tuple) else out["ours_result"]
        t = (
            out["torch_result"][0]
            if isinstance(out["torch_result"], tuple)
            else out["torch_result"]
        )
        out["max_rel_error_vs_torch"] = float((a - t).abs().max() / t.abs().max())
    pairs = float(m) * float(n)
    if out.get("ours_seconds") and gpu.peak:
        flops = pairs * FLOPS[row["case"]](d)
        out["ours_fraction_of_fp32_peak"] = flops / out["ours_seconds"] / gpu.peak
    for who in ("torch", "keops", "faiss"):
        if out.get("ours_seconds") and out.get(f"{who}_seconds"):
            out[f"speedup_vs_{who}"] = out[f"{who}_seconds"] / out["ours_seconds"]
    for key in [k for k in out if k.endswith("_result")]:
        del out[key]
    return out


def first_call(gpu: Gpu) -> dict[str, Any]:
    """A new formula's first call in a fresh cache: print, NVRTC, cubin cache, load, run."""
    import torch

    from lazykernels.torch import Genred

    os.environ["LAZYKERNELS_CACHE"] = tempfile.mkdtemp(prefix="lk-gpu-bench-")
    x = torch.rand(10000, 3, device="cuda")
    routine = Genred("Exp(-SqDist(x, y) * 1.25) * b", _aliases(3)[:3], axis=1)
    t0 = time.perf_counter()
    routine(x, x, x[:, :1])
    torch.cuda.synchronize()
    return {"case": "first_call", "gpu": gpu.name, "ours_seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", help="no GPU: compile the kernels only")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    if args.dry:
        return dry(args)
    from lazykernels.cuda import driver

    reason = driver.unavailable_reason()
    if reason is not None:
        print(f"bench_gpu: no GPU ({reason}); nothing measured (--dry compiles only)")
        return 1
    try:
        import torch
    except ImportError:
        print("bench_gpu: torch is not installed; nothing measured")
        return 1
    if not torch.cuda.is_available():
        print("bench_gpu: this torch build cannot use the GPU; nothing measured")
        return 1
    gpu = Gpu()
    print(
        f"GPU: {gpu.name} (sm_{gpu.capability[0]}{gpu.capability[1]}), FP32 peak "
        f"{gpu.peak / 1e12:.1f} Tflop/s"
    )
    rows = [first_call(gpu)]
    print(json.dumps(rows[0]))
    for row in cases(args.quick):
        try:
            rows.append(measure(row, gpu, args.repeats))
        except Exception:
            rows.append({**row, "error": traceback.format_exc().splitlines()[-1]})
        print(json.dumps(rows[-1], default=str), flush=True)
    _write(args.json, {"dry": False, "gpu": gpu.name, "peak_flops": gpu.peak, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
