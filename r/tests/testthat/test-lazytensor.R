# The R LazyTensor: operators, reductions, %*% and solve against dense base R

x <- set_points(3, 50, 3)
y <- set_points(4, 70, 3)
b <- stats::runif(70)
x_i <- Vi(x)
y_j <- Vj(y)
D_ij <- sum((x_i - y_j)^2)
D <- sqdist_dense(x, y)

test_that("a Gaussian kernel sum from R operators agrees with the dense one", {
  K_ij <- exp(-D_ij / 0.5)
  ref <- base::`%*%`(exp(-D / 0.5), b)
  expect_equal(K_ij %*% b, ref, tolerance = 1e-12)
  expect_equal(sum(K_ij * Vj(b), "j"), ref, tolerance = 1e-12)
  expect_equal(sum_reduction(K_ij * Vj(b), "j"), ref, tolerance = 1e-12)
  expect_equal(K_ij %*% Vj(b), ref, tolerance = 1e-12)
  # over i: one row per j
  a <- stats::runif(50)
  expect_equal(sum(K_ij * Vi(a), "i"), base::`%*%`(t(exp(-D / 0.5)), a), tolerance = 1e-12)
  # several columns at once; base R's %*% is untouched for plain matrices
  B <- matrix(stats::runif(140), 70, 2)
  expect_equal(K_ij %*% B, base::`%*%`(exp(-D / 0.5), B), tolerance = 1e-12)
  expect_equal(x %*% t(x), base::`%*%`(x, t(x)))
})

test_that("element-wise operations and parameters follow their base R definitions", {
  p <- Pm(c(0.5, 2))
  F_ij <- sqrt(abs(elem(x_i, 1) - elem(y_j, 2)) + 1) * log(1 + D_ij) / elem(p, 2) +
    sqnorm2(x_i - y_j)^1.5 - (x_i | y_j)
  ref <- sqrt(abs(outer(x[, 1], y[, 2], "-")) + 1) * log(1 + D) / 2 + D^1.5 -
    base::`%*%`(x, t(y))
  expect_equal(F_ij %*% b, base::`%*%`(ref, b), tolerance = 1e-10)
  E_ij <- extract(x_i, 2, 2) - extract(y_j, 2, 2)
  expect_equal(sqnorm2(E_ij) %*% b, base::`%*%`(sqdist_dense(x[, 2:3], y[, 2:3]), b),
               tolerance = 1e-12)
  expect_equal(sqdist(x_i, y_j) %*% b, base::`%*%`(D, b), tolerance = 1e-12)
  expect_equal(exp(-D_ij * 2)^3 %*% b, base::`%*%`(exp(-6 * D), b), tolerance = 1e-12)
})

test_that("argKmin is 1-based and agrees with apply(order) / which.min", {
  nn <- argKmin(D_ij, 5, "j")
  expect_true(is.integer(nn))
  expect_equal(dim(nn), c(50L, 5L))
  expect_equal(nn, kmin_index_dense(D, 5))
  expect_equal(argmin(D_ij, "j"), matrix(apply(D, 1, which.min)))
  expect_equal(argKmin(D_ij, 3, "i"), kmin_index_dense(t(D), 3))
  res <- Kmin_argKmin(D_ij, 2, "j")
  expect_equal(res$indices, kmin_index_dense(D, 2))
  expect_equal(res$values, t(apply(D, 1, function(r) sort(r)[1:2])), tolerance = 1e-12)
  expect_equal(min(D_ij, "j"), matrix(apply(D, 1, min)), tolerance = 1e-12)
  expect_equal(max_argmax(D_ij, "i")$indices, matrix(apply(D, 2, which.max)))
})

test_that("logsumexp and sumsoftmaxweight agree with the dense formulas", {
  expect_equal(logsumexp(-D_ij, "j"), matrix(log(rowSums(exp(-D)))), tolerance = 1e-12)
  w <- stats::runif(70)
  expect_equal(logsumexp(-D_ij, "j", Vj(w)), matrix(log(base::`%*%`(exp(-D), w))),
               tolerance = 1e-12)
  expect_equal(sumsoftmaxweight(-D_ij, "j", Vj(w)),
               base::`%*%`(exp(-D), w) / rowSums(exp(-D)), tolerance = 1e-12)
})

test_that("solve(K, b, alpha) solves the ridge system of the dense kernel matrix", {
  z <- set_points(5, 80, 2)
  K_ij <- exp(-sum((Vi(z) - Vj(z))^2) / 0.1)
  rhs <- sin(6 * z[, 1]) + z[, 2]
  alpha <- 0.1
  ref <- base::solve(diag(alpha, 80) + exp(-sqdist_dense(z, z) / 0.1), rhs)
  sol <- solve(K_ij, rhs, alpha = alpha, eps = 1e-12)
  expect_equal(length(sol), 80L)
  expect_equal(sol, ref, tolerance = 1e-8)
  R <- cbind(rhs, cos(z[, 2]))
  ref2 <- base::solve(diag(alpha, 80) + exp(-sqdist_dense(z, z) / 0.1), R)
  expect_equal(solve(K_ij, R, alpha = alpha, eps = 1e-12), unname(ref2), tolerance = 1e-8)
})

test_that("float32 LazyTensors compute in single precision", {
  K32 <- exp(-sum((Vi(x, dtype = "float32") - Vj(y, dtype = "float32"))^2) / 0.5)
  ref <- base::`%*%`(exp(-D / 0.5), b)
  res <- K32 %*% b
  expect_equal(res, ref, tolerance = 1e-5)
  expect_false(isTRUE(all.equal(res, ref, tolerance = 1e-12)))
  expect_output(print(K32), "float32")
})

test_that("Kmin of a vector LazyTensor gives an n x K x D array, coordinate by coordinate", {
  V_ij <- abs(Vi(x[, 1:2]) - Vj(y[, 1:2]))
  res <- Kmin(V_ij, 3, "j")
  expect_equal(dim(res), c(50L, 3L, 2L))
  for (k in 1:2) {
    dense <- abs(outer(x[, k], y[, k], "-"))
    expect_equal(res[, , k], t(apply(dense, 1, function(r) sort(r)[1:3])), tolerance = 1e-12)
  }
})
