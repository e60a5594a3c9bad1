# keops_kernel() and keops_grad(): RKeOps's formula-string interface

gauss_args <- c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)")
gauss_formula <- "Sum_Reduction(Exp(-SqDist(x, y) / s) * b, 0)"

x <- set_points(1, 40, 3)
y <- set_points(2, 60, 3)
b <- stats::runif(60)
s <- 0.3

test_that("a Gaussian kernel sum agrees with the dense base R one", {
  op <- keops_kernel(gauss_formula, gauss_args)
  res <- op(list(x, y, b, s))
  expect_equal(dim(res), c(40L, 1L))
  expect_equal(res, base::`%*%`(gauss_dense(x, y, s), b), tolerance = 1e-12)
  # inputs named, in any order, or partly named
  expect_equal(op(list(s = s, b = b, y = y, x = x)), res)
  expect_equal(op(list(x, y, s = s, b = b)), res)
})

test_that("tag 1 reduces over i: one row per j", {
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y) / s) * a, 1)",
                     c("x = Vi(3)", "y = Vj(3)", "a = Vi(1)", "s = Pm(1)"))
  a <- stats::runif(40)
  expect_equal(op(list(x, y, a, s)), base::`%*%`(t(gauss_dense(x, y, s)), a),
               tolerance = 1e-12)
})

test_that("float32 computes in single precision, close to the dense result", {
  op <- keops_kernel(gauss_formula, gauss_args, dtype = "float32")
  res <- op(list(x, y, b, s))
  ref <- base::`%*%`(gauss_dense(x, y, s), b)
  expect_equal(res, ref, tolerance = 1e-5)
  expect_false(isTRUE(all.equal(res, ref, tolerance = 1e-12))) # really float32
  expect_equal(op(list(x, y, b, s), dtype = "float64"), ref, tolerance = 1e-12)
})

test_that("inner_dim = \"row\" takes one point per column and transposes the output", {
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y) / s) * b, 0)",
                     c("x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "s = Pm(1)"))
  b2 <- matrix(stats::runif(120), 60, 2)
  ref <- base::`%*%`(gauss_dense(x, y, s), b2)
  expect_equal(op(list(x, y, b2, s)), ref, tolerance = 1e-12)
  expect_equal(op(list(t(x), t(y), t(b2), s), inner_dim = "row"), t(ref), tolerance = 1e-12)
})

test_that("ArgKMin indices are 1-based and match apply(order) on the dense distances", {
  op <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 4, 0)", c("x = Vi(3)", "y = Vj(3)"))
  idx <- op(list(x, y))
  expect_true(is.integer(idx))
  expect_equal(idx, kmin_index_dense(sqdist_dense(x, y), 4))
  expect_true(all(idx >= 1L & idx <= 60L))
})

test_that("Min_ArgMin returns values and 1-based indices", {
  op <- keops_kernel("Min_ArgMin_Reduction(SqDist(x, y), 0)", c("x = Vi(3)", "y = Vj(3)"))
  res <- op(list(x, y))
  D <- sqdist_dense(x, y)
  expect_named(res, c("values", "indices"))
  expect_equal(res$values, matrix(apply(D, 1, min)), tolerance = 1e-12)
  expect_equal(res$indices, matrix(apply(D, 1, which.min)))
})

test_that("keops_grad of the Gaussian sum matches the dense gradient and finite differences", {
  op <- keops_kernel(gauss_formula, gauss_args)
  eta <- matrix(stats::runif(40), 40, 1)
  K <- gauss_dense(x, y, s)
  W <- K * outer(as.vector(eta), b) # W[i, j] = eta_i K_ij b_j
  # d/dx_i: sum_j W_ij (-2 / s) (x_i - y_j)
  gx_ref <- -2 / s * (rowSums(W) * x - base::`%*%`(W, y))
  gx <- keops_grad(op, "x")(list(x, y, b, s, eta))
  expect_equal(gx, gx_ref, tolerance = 1e-10)
  # by position (1-based) and with respect to a j variable
  gy_ref <- -2 / s * (colSums(W) * y - base::`%*%`(t(W), x))
  expect_equal(keops_grad(op, 2)(list(x, y, b, s, eta = eta)), gy_ref, tolerance = 1e-10)
  # with respect to the parameter s: a vector, checked by central differences
  gs <- keops_grad(op, "s")(list(x, y, b, s, eta))
  h <- 1e-6
  f <- function(s) sum(eta * op(list(x, y, b, s)))
  expect_equal(as.vector(gs), (f(s + h) - f(s - h)) / (2 * h), tolerance = 1e-6)
})

test_that("keops_grad of a log-sum-exp feeds its own forward output", {
  op <- keops_kernel("LogSumExp_Reduction(-SqDist(x, y) / s, 0)",
                     c("x = Vi(3)", "y = Vj(3)", "s = Pm(1)"))
  D <- sqdist_dense(x, y)
  expect_equal(op(list(x, y, s)), matrix(log(rowSums(exp(-D / s)))), tolerance = 1e-12)
  eta <- matrix(stats::runif(40), 40, 1)
  P <- exp(-D / s) / rowSums(exp(-D / s)) # soft-max weights
  gx_ref <- -2 / s * as.vector(eta) * (x - base::`%*%`(P, y))
  expect_equal(keops_grad(op, "x")(list(x, y, s, eta)), gx_ref, tolerance = 1e-10)
})
