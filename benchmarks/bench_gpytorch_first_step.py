"""First GPyTorch training step with KeOps kernels: lazykernels (install_as_pykeops) vs pykeops.

GPyTorch's ``gpytorch.kernels.keops.RBFKernel`` / ``MaternKernel`` import ``pykeops``
themselves. This script times one exact-GP training step (marginal log-likelihood, forward
and backward) in a fresh process for each side, so that the first step pays every kernel
compilation (CG / Lanczos with 11 to ~90 probe vectors means several kernels of different
vector dimensions), then a second step in the same process (warm), then the same with the
compile cache kept from the cold run (a new process, kernels on disk):

- ``lazykernels``: ``lazykernels.install_as_pykeops()`` first, cache in a fresh directory
  (``LAZYKERNELS_CACHE``);
- ``pykeops``: the real KeOps (compiles with g++ on the CPU), cache in a fresh directory
  (``KEOPS_CACHE_FOLDER``); skipped when pykeops is not installed;
- ``dense``: ``gpytorch.kernels.RBFKernel`` / ``MaternKernel`` (no compilation).

Usage::

    python benchmarks/bench_gpytorch_first_step.py                  # n=2000, D=3, both kernels
    python benchmarks/bench_gpytorch_first_step.py --n 1000 --kernels rbf --sides lazykernels dense

The step uses GPyTorch's defaults (``max_cholesky_size`` 800: KeOps is used from n > 800),
float32 data. Timings are wall-clock seconds of one step; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

KERNELS = {"rbf": "RBFKernel", "matern": "MaternKernel"}


def _step_worker(side: str, kernel: str, n: int, dim: int) -> dict[str, float]:
    """Runs in the child process: two training steps, returns their times and the loss."""
    if side == "lazykernels":
        import lazykernels

        lazykernels.install_as_pykeops()
    import gpytorch
    import torch

    torch.manual_seed(0)
    x = torch.rand(n, dim)
    y = torch.sin(6 * x[:, 0]) + 0.1 * torch.randn(n)
    module = gpytorch.kernels if side == "dense" else gpytorch.kernels.keops
    base = getattr(module, KERNELS[kernel])()

    class ExactGP(gpytorch.models.ExactGP):
        def __init__(self, likelihood):
            super().__init__(x, y, likelihood)
            self.mean = gpytorch.means.ConstantMean()
            self.covar = gpytorch.kernels.ScaleKernel(base)

        def forward(self, t):
            return gpytorch.distributions.MultivariateNormal(self.mean(t), self.covar(t))

    likelihood = gpytorch.likelihoods.GaussianLikelihood()
    model = ExactGP(likelihood)
    model.train()
    likelihood.train()
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    times, losses = [], []
    for _ in range(2):
        torch.manual_seed(1)
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = -mll(model(x), y)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
        losses.append(float(loss.detach()))
    return {"first": times[0], "second": times[1], "loss": losses[0]}


def _run_child(side: str, kernel: str, n: int, dim: int, cache: str) -> dict[str, float]:
    env = dict(os.environ)
    env["LAZYKERNELS_CACHE"] = os.path.join(cache, "lazykernels")
    env["KEOPS_CACHE_FOLDER"] = os.path.join(cache, "keops")
    env.setdefault("PYKEOPS_VERBOSE", "0")
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import bench_gpytorch_first_step as b;"
        "print('RESULT', json.dumps(b._step_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]),"
        " int(sys.argv[5]))))"
    )
    here = os.path.dirname(os.path.abspath(__file__))
    command = [sys.executable, "-c", code, here, side, kernel, str(n), str(dim)]
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{side} {kernel} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    result = json.loads(lines[-1][len("RESULT ") :])
    result["process"] = wall
    return result


def _available(side: str) -> bool:
    import importlib.util

    names = {"pykeops": "pykeops", "lazykernels": "lazykernels", "dense": "gpytorch"}
    return importlib.util.find_spec(names[side]) is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="training points (default 2000)")
    parser.add_argument("--dim", type=int, default=3, help="input dimension (default 3)")
    parser.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=list(KERNELS))
    parser.add_argument(
        "--sides",
        nargs="+",
        default=["lazykernels", "pykeops", "dense"],
        choices=["lazykernels", "pykeops", "dense"],
    )
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)
    rows = []
    print(f"GPyTorch exact GP, one training step, n={args.n}, D={args.dim}, float32")
    header = (
        f"{'kernel':8} {'side':12} {'cold 1st':>9} {'cold 2nd':>9} {'cached 1st':>10} {'loss':>10}"
    )
    print(header)
    for kernel in args.kernels:
        for side in args.sides:
            if not _available(side):
                print(f"{kernel:8} {side:12} (not installed)")
                continue
            with tempfile.TemporaryDirectory(prefix="bench-gpytorch-") as cache:
                cold = _run_child(side, kernel, args.n, args.dim, cache)
                cached = _run_child(side, kernel, args.n, args.dim, cache)
            rows.append({"kernel": kernel, "side": side, "cold": cold, "cached": cached})
            print(
                f"{kernel:8} {side:12} {cold['first']:9.2f} {cold['second']:9.3f} "
                f"{cached['first']:10.3f} {cold['loss']:10.6f}",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"n": args.n, "dim": args.dim, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
