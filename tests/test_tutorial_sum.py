"""KeOps's tutorial "Sum reduction" (generic syntax, NumPy), unchanged apart from the import.

Only the sizes are smaller and the plots are left out; the results are then compared with
the dense NumPy expressions of the same sums.
"""

from __future__ import annotations

import numpy as np

from lazykernels.numpy import Genred


def test_tutorial_sum_reduction_and_its_gradient():
    np.random.seed(0)

    #####################################################################
    # Declare random inputs:

    M = 100  # Number of "i" points
    N = 120  # Number of "j" points
    D = 3  # Dimension of the ambient space
    Dv = 2  # Dimension of the vectors (unused in this tutorial)  # noqa: F841

    x = 2 * np.random.randn(M, D)
    y = 2 * np.random.randn(N, D)
    a = np.random.randn(N, 1)
    p = np.random.randn(1)

    #####################################################################
    # Define a custom formula

    formula = "Square(p-a)*Exp(x+y)"
    variables = [
        "x = Vi(" + str(D) + ")",  # First arg   : i-variable, of size D
        "y = Vj(" + str(D) + ")",  # Second arg  : j-variable, of size D
        "a = Vj(1)",  # Third arg  : j-variable, of size 1
        "p = Pm(1)",  # Fourth  arg : Parameter,  of size 1
    ]

    dtype = "float64"  # May be 'float32' or 'float64'  # noqa: F841

    #####################################################################
    # Our sum reduction is performed over the index :math:`j`,
    # i.e. on the axis ``1`` of the kernel matrix.
    # The output c is an :math:`x`-variable indexed by :math:`i`.

    my_routine = Genred(formula, variables, reduction_op="Sum", axis=1)
    c = my_routine(x, y, a, p, backend="auto")

    #####################################################################
    # Compute the gradient
    # New variable of size D, used as input of the gradient
    e = np.random.rand(M, D)
    # Call the gradient op:
    my_grad = Genred(
        "Grad(" + formula + ", y, e)",
        variables + ["e = Vi(" + str(D) + ")"],
        reduction_op="Sum",
        axis=0,
    )
    # N.B.: By convention, the gradient is computed with respect to the variable y,
    # so the result has the same shape as y.
    g = my_grad(x, y, a, p, e)

    #####################################################################
    # Dense NumPy check of both results.
    weights = (p[0] - a[:, 0]) ** 2  # (N,)
    kernel = np.exp(x[:, None, :] + y[None, :, :])  # (M, N, D)
    c_dense = (weights[None, :, None] * kernel).sum(axis=1)
    g_dense = (e[:, None, :] * weights[None, :, None] * kernel).sum(axis=0)
    assert c.shape == (M, D) and g.shape == (N, D)
    np.testing.assert_allclose(c, c_dense, rtol=1e-12)
    np.testing.assert_allclose(g, g_dense, rtol=1e-12)
