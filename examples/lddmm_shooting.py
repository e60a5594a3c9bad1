"""Diffeomorphic registration (LDDMM) by geodesic shooting, with torch LazyTensors.

In the LDDMM model a shape is deformed by the flow of a smooth velocity field carried by
momentum vectors ``p_i`` attached to its points ``q_i``. Geodesics follow Hamilton's
equations for the Hamiltonian

    H(q, p) = 1/2 sum_ij <p_i, K(q_i, q_j) p_j>,     K(x, y) = exp(-|x - y|^2 / (2 sigma^2)),

    dq/dt = dH/dp,      dp/dt = -dH/dq,

where ``K(q, q) p`` is a lazykernels reduction on a symbolic matrix and the two partial
derivatives come from ``torch.autograd`` (through the reduction: its derivatives are
reductions too). Integrating from ``(q0, p0)`` over ``t in [0, 1]`` (``--steps`` Euler
steps) "shoots" the source shape; any other point ``x`` follows ``dx/dt = K(x, q) p``,
which pushes a grid along to show the deformation.

Registration looks for the initial momentum ``p0`` that brings a source curve (a circle)
onto a target curve (a wavy ellipse sampled at other points, so there is no
correspondence), minimising

    E(p0) = gamma * H(q0, p0) + MMD(q(1), y),

the deformation energy plus a Gaussian-kernel MMD between point sets (three more
lazykernels sums), by L-BFGS with a strong-Wolfe line search; the gradient of E goes
through the whole shooting, i.e. second derivatives of the kernel reductions. The energy
printed per iteration decreases. The script also checks ``E`` and its gradient against a
dense PyTorch implementation and times both. Writes ``lddmm_shooting.png`` (the point
trajectories and the deformed grid).

Run: ``python examples/lddmm_shooting.py [--n 60] [--iters 25] [--out-dir .]``
(KeOps tutorial ``surface_registration/plot_LDDMM_Surface.py``, on curves.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from _common import make_parser, new_figure, parse, print_timings, save_figure, timed

from lazykernels.torch import Vi, Vj

SIGMA = 0.5  # deformation kernel width (the shapes span ~3 units)
SIGMA_DATA = 0.3  # width of the MMD kernel
GAMMA = 0.01  # weight of the deformation energy
Tensor = torch.Tensor


def gauss_lazy(x: Tensor, y: Tensor, sigma: float) -> Any:
    """Symbolic Gaussian kernel matrix ``exp(-|x_i - y_j|^2 / (2 sigma^2))``."""
    return (-Vi(x).sqdist(Vj(y)) / (2 * sigma**2)).exp()


def gauss_dense(x: Tensor, y: Tensor, sigma: float) -> Tensor:
    """The same matrix, stored (PyTorch)."""
    return torch.exp(-((x[:, None, :] - y[None, :, :]) ** 2).sum(-1) / (2 * sigma**2))


class Model:
    """Hamiltonian, shooting and registration energy for one kernel implementation."""

    def __init__(self, kernel: Callable[[Tensor, Tensor, float], Any], steps: int) -> None:
        self.kernel, self.steps = kernel, steps

    def hamiltonian(self, q: Tensor, p: Tensor) -> Tensor:
        """``1/2 <p, K(q, q) p>``."""
        return 0.5 * (p * (self.kernel(q, q, SIGMA) @ p)).sum()

    def shoot(self, q: Tensor, p: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Euler integration of Hamilton's equations; the (q, p) of every time step."""
        # H is differentiated with respect to q and p: both must be in the autograd graph
        q, p = (v if v.requires_grad else v.detach().requires_grad_(True) for v in (q, p))
        path = [(q, p)]
        dt = 1.0 / self.steps
        for _ in range(self.steps):
            dh_dq, dh_dp = torch.autograd.grad(self.hamiltonian(q, p), (q, p), create_graph=True)
            q, p = q + dt * dh_dp, p - dt * dh_dq
            path.append((q, p))
        return path

    def mmd(self, x: Tensor, y: Tensor) -> Tensor:
        """Squared kernel MMD between the uniform measures on ``x`` and ``y``."""

        def mean_k(a: Tensor, b: Tensor) -> Tensor:
            return (self.kernel(a, b, SIGMA_DATA) @ torch.ones_like(b[:, :1])).sum() / (
                len(a) * len(b)
            )

        return mean_k(x, x) + mean_k(y, y) - 2 * mean_k(x, y)

    def energy(self, p0: Tensor, q0: Tensor, target: Tensor) -> Tensor:
        """``gamma H(q0, p0) + MMD(q(1), target)``."""
        q1, _ = self.shoot(q0, p0)[-1]
        return GAMMA * self.hamiltonian(q0, p0) + self.mmd(q1, target)

    def flow(self, path: list[tuple[Tensor, Tensor]], x: Tensor) -> list[Tensor]:
        """Points ``x`` moved along the velocity fields ``K(., q_t) p_t`` of a path."""
        xs = [x]
        for q, p in path[:-1]:
            x = x + (self.kernel(x, q, SIGMA) @ p) / self.steps
            xs.append(x)
        return xs


def curves(n: int) -> tuple[Tensor, Tensor]:
    """Source: a circle of ``n`` points. Target: a wavy ellipse, sampled at other angles."""
    t = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    source = torch.stack([torch.cos(t), torch.sin(t)], dim=1)
    s = t + math.pi / n  # halfway between the source's angles
    target = torch.stack(
        [1.5 * torch.cos(s) + 0.3, 0.8 * torch.sin(s) + 0.25 * torch.cos(3 * s)], dim=1
    )
    return source, target


def register(model: Model, q0: Tensor, target: Tensor, iters: int) -> tuple[Tensor, list[float]]:
    """L-BFGS on the initial momentum; the energy before each iteration and at the end."""
    p0 = torch.zeros_like(q0, requires_grad=True)
    # one L-BFGS iteration per step() call, with up to 20 energy evaluations for the line
    # search (max_eval defaults to max_iter * 5 // 4 = 1, which would stall the search)
    optimizer = torch.optim.LBFGS([p0], max_iter=1, max_eval=20, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        energy = model.energy(p0, q0, target)
        energy.backward()
        return energy

    energies = []
    for it in range(iters):
        energies.append(float(optimizer.step(closure).detach()))  # energy before this step
        print(f"iteration {it:2d}: energy {energies[-1]:.8f}")
    energies.append(float(model.energy(p0.detach(), q0, target).detach()))
    print(f"final       : energy {energies[-1]:.8f}")
    return p0.detach(), energies


def energy_and_grad(model: Model, p0: Tensor, q0: Tensor, target: Tensor) -> tuple[Tensor, ...]:
    """``E(p0)`` and ``dE/dp0`` (one evaluation of what L-BFGS needs)."""
    p = p0.clone().requires_grad_(True)
    energy = model.energy(p, q0, target)
    (grad,) = torch.autograd.grad(energy, p)
    return energy.detach(), grad


def plot(model: Model, q0: Tensor, p0: Tensor, target: Tensor, out_dir: Any) -> Any:
    """Trajectories of the source points, and the grid deformed by the same flow."""
    path = model.shoot(q0, p0)
    traj = torch.stack([q for q, _ in path]).detach().numpy()  # (steps + 1, n, 2)
    side = 25
    g = torch.linspace(-2.2, 2.2, side, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(g, g, indexing="xy"), dim=-1).reshape(-1, 2)
    with torch.no_grad():
        moved = model.flow([(q.detach(), p.detach()) for q, p in path], grid)[-1]
    moved = moved.numpy().reshape(side, side, 2)

    fig, axes = new_figure(ncols=2, size=5)
    for ax in axes:
        ax.plot(*_closed(target.numpy()), "r-", lw=1.5, label="target")
        ax.plot(*_closed(traj[0]), "b--", lw=1, label="source")
        ax.plot(*_closed(traj[-1]), "b-", lw=1.5, label="deformed source")
        ax.set_aspect("equal")
    axes[0].plot(traj[:, :, 0], traj[:, :, 1], "k-", lw=0.5, alpha=0.6)
    axes[0].set_title(f"geodesic shooting: trajectories ({model.steps} Euler steps)")
    axes[0].legend(loc="upper left", fontsize=8)
    axes[1].plot(moved[:, :, 0], moved[:, :, 1], "0.5", lw=0.5)
    axes[1].plot(moved[:, :, 0].T, moved[:, :, 1].T, "0.5", lw=0.5)
    axes[1].set_title("deformed grid (pushed by the flow)")
    return save_figure(fig, out_dir, "lddmm_shooting.png")


def _closed(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    loop = np.concatenate([points, points[:1]])
    return loop[:, 0], loop[:, 1]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the tutorial; return the energies per iteration and the dense comparison."""
    parser = make_parser(__doc__.splitlines()[0], n_default=60)
    parser.add_argument("--iters", type=int, default=25, help="L-BFGS iterations")
    parser.add_argument("--steps", type=int, default=10, help="Euler steps of the shooting")
    args = parse(parser, argv)
    torch.manual_seed(args.seed)
    q0, target = curves(args.n)
    lazy, dense = Model(gauss_lazy, args.steps), Model(gauss_dense, args.steps)

    p0, energies = register(lazy, q0, target, args.iters)
    result: dict[str, Any] = {"energies": energies}

    # E and dE/dp0 at a generic momentum: lazykernels vs dense PyTorch
    p_test = 0.3 * torch.randn_like(q0)
    (e_lazy, g_lazy), t_lazy = timed(energy_and_grad, lazy, p_test, q0, target, repeat=2)
    (e_dense, g_dense), t_dense = timed(energy_and_grad, dense, p_test, q0, target, repeat=2)
    result["energy_gap"] = float(abs(e_lazy - e_dense) / abs(e_dense))
    result["grad_gap"] = float((g_lazy - g_dense).abs().max() / g_dense.abs().max())
    print(
        f"E(p) and dE/dp vs dense PyTorch: relative gaps {result['energy_gap']:.1e}, "
        f"{result['grad_gap']:.1e}"
    )
    print_timings(
        f"One energy + gradient evaluation, n = {args.n} points (float64, warm):",
        ["lazykernels LazyTensor", "dense PyTorch"],
        [("E(p0), dE/dp0", [t_lazy, t_dense])],
    )
    plot(lazy, q0, p0, target, args.out_dir)
    return result


if __name__ == "__main__":
    main()
