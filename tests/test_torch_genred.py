"""``lazykernels.torch.Genred``: forward values against dense torch, errors, options."""

from __future__ import annotations

import pickle

import pytest

torch = pytest.importorskip("torch")

from lazykernels.errors import (  # noqa: E402
    ArgumentError,
    BackendError,
    CompatibilityError,
    DtypeError,
)
from lazykernels.torch import (  # noqa: E402
    Genred,
    generic_argkmin,
    generic_argmin,
    generic_logsumexp,
    generic_sum,
)

REF = "reference"
ALIASES = ["x = Vi(2)", "y = Vj(2)", "b = Vj(1)", "p = Pm(1)"]
F_SUM = "Exp(-p * SqDist(x, y)) * b * x"  # dim 2
F_LSE = "-p * SqDist(x, y) + b * Sum(x)"  # scalar
F_MIN = "SqDist(x, y) * p + b * x"  # dim 2: components select different indices
F_MIN1 = "SqDist(x, y) * p + b"  # dim 1


def inputs(m=5, n=6, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(m, 2, generator=gen, dtype=dtype)
    y = torch.randn(n, 2, generator=gen, dtype=dtype)
    b = torch.randn(n, 1, generator=gen, dtype=dtype)
    p = torch.rand(1, generator=gen, dtype=dtype) + 0.5
    return x, y, b, p


def kernel(which, x, y, b, p):
    """The dense (M, N, D) matrix of each test formula."""
    d2 = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1, keepdim=True)
    if which == "sum":
        return torch.exp(-p * d2) * b[None] * x[:, None]
    if which == "lse":
        return -p * d2 + b[None] * x.sum(-1, keepdim=True)[:, None]
    if which == "min":
        return d2 * p + b[None] * x[:, None]
    return d2 * p + b[None]


def dense(reduction, axis, x, y, b, p, k=3):
    """Dense torch value of each reduction (the oracle), output rows first."""
    r = 1 if axis == 1 else 0  # the reduced axis of the (M, N, D) matrix
    if reduction == "Sum":
        return kernel("sum", x, y, b, p).sum(r)
    lse = kernel("lse", x, y, b, p)
    if reduction == "LogSumExp":
        return torch.logsumexp(lse, r)
    if reduction == "LogSumExpWeight":  # weight Exp(b * x) > 0: log w = b * x
        return torch.logsumexp(lse + b[None] * x[:, None], r)
    if reduction == "SumSoftMaxWeight":  # weight b * x + y
        w = torch.softmax(lse, r)
        return (w * (b[None] * x[:, None] + y[None])).sum(r)
    scalar = reduction.endswith("1")
    kmat = kernel("min1" if scalar else "min", x, y, b, p)
    kmat = kmat if axis == 1 else kmat.transpose(0, 1)  # output rows first
    kind = reduction.rstrip("1").split("_")[0].replace("Arg", "")
    if kind == "Min":
        res = kmat.min(1)
        return res.values, res.indices
    if kind == "Max":
        res = kmat.max(1)
        return res.values, res.indices
    assert kind == "KMin"
    res = torch.sort(kmat, 1)
    values, indices = res.values[:, :k], res.indices[:, :k]
    if scalar:
        return values[..., 0], indices[..., 0]
    return values, indices


def genred(reduction, axis, k=3):
    """The Genred of each test reduction (KMin1: the scalar-formula KMin)."""
    weights = {"LogSumExpWeight": "Exp(b * x)", "SumSoftMaxWeight": "b * x + y"}
    if reduction == "Sum":
        formula = F_SUM
    elif reduction in ("LogSumExp", "LogSumExpWeight", "SumSoftMaxWeight"):
        formula = F_LSE
    else:
        formula = F_MIN1 if reduction.endswith("1") else F_MIN
    name = reduction.rstrip("1")
    op = "LogSumExp" if name == "LogSumExpWeight" else name
    return Genred(
        formula,
        ALIASES,
        reduction_op=op,
        axis=axis,
        formula2=weights.get(name),
        opt_arg=k if "KMin" in name else None,
    )


SMOOTH = ["Sum", "LogSumExp", "LogSumExpWeight", "SumSoftMaxWeight"]


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("reduction", SMOOTH)
def test_smooth_reductions_match_dense_torch(reduction, axis):
    x, y, b, p = inputs()
    out = genred(reduction, axis)(x, y, b, p, backend=REF)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    expected = dense(reduction, axis, x, y, b, p)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize(
    "reduction",
    ["Min", "Max", "ArgMin", "ArgMax", "Min_ArgMin", "Max_ArgMax", "KMin", "ArgKMin"]
    + ["KMin_ArgKMin", "KMin1", "ArgKMin1"],
)
def test_selection_reductions_match_dense_torch(reduction, axis):
    x, y, b, p = inputs()
    out = genred(reduction, axis)(x, y, b, p, backend=REF)
    values, indices = dense(reduction, axis, x, y, b, p)
    if reduction.startswith("Arg"):
        assert out.dtype == torch.int64 and not out.requires_grad
        assert torch.equal(out, indices)
    elif "_Arg" in reduction:
        torch.testing.assert_close(out[0], values, rtol=0, atol=0)
        assert out[1].dtype == torch.int64 and torch.equal(out[1], indices)
    else:
        torch.testing.assert_close(out, values, rtol=0, atol=0)


def test_argmin_output_is_int64_without_grad_even_with_tracked_inputs():
    x, y, b, p = inputs()
    x.requires_grad_(True)
    idx = genred("ArgMin", 1)(x, y, b, p, backend=REF)
    assert idx.dtype == torch.int64 and not idx.requires_grad and idx.grad_fn is None
    values, idx2 = genred("Min_ArgMin", 1)(x, y, b, p, backend=REF)
    assert values.requires_grad and not idx2.requires_grad
    assert torch.equal(idx, idx2)


def test_batch_dimensions_broadcast_like_dense_torch():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 1, 4, 2, generator=gen, dtype=torch.float64)
    y = torch.randn(1, 3, 5, 2, generator=gen, dtype=torch.float64)
    b = torch.randn(2, 3, 5, 1, generator=gen, dtype=torch.float64)
    p = torch.rand(2, 1, 1, generator=gen, dtype=torch.float64) + 0.5
    out = genred("Sum", 1)(x, y, b, p, backend=REF)
    d2 = ((x[..., :, None, :] - y[..., None, :, :]) ** 2).sum(-1, keepdim=True)
    pp = p[..., None, None, :]
    expected = (torch.exp(-pp * d2) * b[..., None, :, :] * x[..., :, None, :]).sum(-2)
    assert out.shape == (2, 3, 4, 2)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)


def test_float32_and_float16_keep_their_dtype():
    x, y, b, p = inputs(dtype=torch.float32)
    out = genred("Sum", 1)(x, y, b, p, backend=REF)
    assert out.dtype == torch.float32
    expected = dense("Sum", 1, *(t.double() for t in (x, y, b, p)))
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-6)
    half = genred("Sum", 1)(*(t.half() for t in (x, y, b, p)), backend=REF)
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.double(), expected, rtol=1e-2, atol=1e-2)


def test_inputs_reach_the_core_as_the_tensors_themselves(monkeypatch):
    import lazykernels.torch.autograd as ag

    seen = []
    original = ag.run_plan

    def spy(plan, arrays, **kwargs):
        seen.extend(arrays)
        return original(plan, arrays, **kwargs)

    monkeypatch.setattr(ag, "run_plan", spy)
    x, y, b, p = inputs()
    genred("Sum", 1)(x, y, b, p, backend=REF)
    assert all(a is t for a, t in zip(seen, (x, y, b, p)))


def test_out_is_filled_in_place():
    x, y, b, p = inputs()
    out = torch.empty(5, 2, dtype=torch.float64)
    res = genred("Sum", 1)(x, y, b, p, backend=REF, out=out)
    assert res is out
    torch.testing.assert_close(out, dense("Sum", 1, x, y, b, p))
    with pytest.raises(ArgumentError, match="out="):
        genred("Sum", 1)(x.requires_grad_(), y, b, p, backend=REF, out=out)


def test_devices_and_gpu_backends_are_checked():
    from lazykernels.cuda.driver import unavailable_reason

    x, y, b, p = inputs()
    g = genred("Sum", 1)
    with pytest.raises(BackendError, match="only CPU and CUDA tensors"):
        g(x.detach().to("meta"), y, b, p, backend=REF)
    if unavailable_reason() is not None:  # no GPU here: a GPU backend says why
        for backend in ("GPU", "GPU_2D"):
            with pytest.raises(CompatibilityError, match="NVIDIA driver|cuda-bindings|no GPU"):
                g(x, y, b, p, backend=backend)


def test_bad_dtypes_and_arguments_raise():
    x, y, b, p = inputs()
    g = genred("Sum", 1)
    with pytest.raises(DtypeError, match="bfloat16"):
        g(*(t.bfloat16() for t in (x, y, b, p)), backend=REF)
    with pytest.raises(DtypeError, match="same dtype"):
        g(x.float(), y, b, p, backend=REF)
    with pytest.raises(ArgumentError, match="torch.Tensor"):
        g(x.numpy(), y, b, p, backend=REF)
    with pytest.raises(ArgumentError, match="expected 4 input arrays"):
        g(x, y, b, backend=REF)


def test_ranges_as_tensors_restrict_the_reduction():
    x, y, b, p = inputs(m=4, n=6)
    # rows 0-1 see j in [0, 3), rows 2-3 see j in [3, 6); the transposed triple likewise
    ranges_i = torch.tensor([[0, 2], [2, 4]])
    slices = torch.tensor([1, 2])
    red_j = torch.tensor([[0, 3], [3, 6]])
    ranges_j = torch.tensor([[0, 3], [3, 6]])
    red_i = torch.tensor([[0, 2], [2, 4]])
    ranges = (ranges_i, slices, red_j, ranges_j, slices, red_i)
    mask = torch.zeros(4, 6, 1, dtype=torch.bool)
    mask[:2, :3] = mask[2:, 3:] = True
    kmat = kernel("sum", x, y, b, p) * mask
    for axis in (0, 1):
        out = genred("Sum", axis)(x, y, b, p, backend=REF, ranges=ranges)
        torch.testing.assert_close(out, kmat.sum(1 if axis == 1 else 0))


def test_generic_shortcuts():
    x, y, b, p = inputs()
    f = generic_sum(F_SUM, "out = Vi(2)", *ALIASES)
    torch.testing.assert_close(f(x, y, b, p, backend=REF), dense("Sum", 1, x, y, b, p))
    f = generic_logsumexp(F_LSE, "out = Vj(1)", *ALIASES)
    torch.testing.assert_close(f(x, y, b, p, backend=REF), dense("LogSumExp", 0, x, y, b, p))
    f = generic_argmin(F_MIN1, "out = Vi(1)", *ALIASES)
    assert torch.equal(f(x, y, b, p, backend=REF), dense("ArgMin1", 1, x, y, b, p)[1])
    f = generic_argkmin(F_MIN1, "out = Vi(3)", *ALIASES)
    assert torch.equal(f(x, y, b, p, backend=REF), dense("KMin1", 1, x, y, b, p)[1])
    with pytest.raises(ArgumentError, match="not Pm"):
        generic_sum(F_SUM, "out = Pm(2)", *ALIASES)


def test_genred_pickles():
    g = pickle.loads(pickle.dumps(genred("SumSoftMaxWeight", 0)))
    x, y, b, p = inputs()
    expected = dense("SumSoftMaxWeight", 0, x, y, b, p)
    torch.testing.assert_close(g(x, y, b, p, backend=REF), expected)


@pytest.mark.cpu
def test_default_backend_matches_reference():
    x, y, b, p = (t.float() for t in inputs(m=40, n=30))
    g = genred("KMin_ArgKMin", 0)
    out, ref = g(x, y, b, p), g(x, y, b, p, backend=REF)
    torch.testing.assert_close(out[0], ref[0], rtol=1e-5, atol=1e-5)
    assert torch.equal(out[1], ref[1])


@pytest.mark.cpu
def test_keops_tutorial_sum_reduction_torch():
    """KeOps's tutorial "Sum reduction" (torch version), smaller sizes, no plots."""
    torch.manual_seed(0)
    M, N, D = 100, 120, 3
    dtype = torch.float64

    x = 2 * torch.randn(M, D, dtype=dtype)
    y = 2 * torch.randn(N, D, dtype=dtype, requires_grad=True)
    a = torch.randn(N, 1, dtype=dtype)
    p = torch.randn(1, dtype=dtype)

    formula = "Square(p-a)*Exp(x+y)"
    variables = [
        "x = Vi(" + str(D) + ")",  # First arg   : i-variable, of size D
        "y = Vj(" + str(D) + ")",  # Second arg  : j-variable, of size D
        "a = Vj(1)",  # Third arg  : j-variable, of size 1
        "p = Pm(1)",  # Fourth  arg : Parameter,  of size 1
    ]
    my_routine = Genred(formula, variables, reduction_op="Sum", axis=1)
    c = my_routine(x, y, a, p, backend="auto")

    # Compute the gradient w.r.t. y with a test vector e
    e = torch.rand_like(c)
    g = torch.autograd.grad(c, y, e)[0]

    # dense checks: c_id = sum_j (p - a_j)^2 exp(x_id + y_jd), so
    # g_jd = (p - a_j)^2 exp(y_jd) sum_i e_id exp(x_id)
    c_dense = ((p - a[None]) ** 2 * torch.exp(x[:, None] + y[None])).sum(1)
    torch.testing.assert_close(c, c_dense)
    g_dense = (p - a) ** 2 * torch.exp(y) * (e * torch.exp(x)).sum(0)
    torch.testing.assert_close(g, g_dense.detach())
