#' Reductions of a LazyTensor
#'
#' Reduce a symbolic matrix over one of its indices. As in RKeOps, `index` names the
#' index reduced over: `sum(K, "j")` is `sum_j K[i, j]`, one row per `i`; `"i"` gives
#' one row per `j`. Without `index`, `sum()`, `min()`, `max()`, `argmin()` and
#' `argmax()` act on the vector coordinates of each entry and return a LazyTensor.
#'
#' @param x a LazyTensor.
#' @param index `"i"` or `"j"`: the index reduced over.
#' @param K the number of smallest values (`Kmin`, `argKmin`, `Kmin_argKmin`).
#' @param weight a LazyTensor: the weight `g` of `logsumexp(x, index, g)`
#'   (`log sum exp(x) g`) and of `sumsoftmaxweight()` (`sum exp(x) g / sum exp(x)`).
#' @param ... ignored.
#' @param na.rm ignored (LazyTensors hold no missing values).
#' @return A matrix with one row per remaining index; `argmin`, `argKmin`, ... give
#'   1-based integer indices; `min_argmin`, `max_argmax` and `Kmin_argKmin` give
#'   `list(values, indices)`; `Kmin` of a `D > 1` LazyTensor gives an `n x K x D` array.
#' @examples
#' \dontrun{
#' x_i <- Vi(matrix(runif(300), 100, 3)); y_j <- Vj(matrix(runif(600), 200, 3))
#' D_ij <- sum((x_i - y_j)^2)
#' sum(exp(-D_ij), "j")   # 100 x 1
#' argKmin(D_ij, 3, "j")  # 100 x 3, 1-based
#' logsumexp(-D_ij, "i")  # 200 x 1
#' }
#' @name reductions
NULL

lk_reduce <- function(name, x, index, K = NULL, weight = NULL) {
  lk_check_lazy(x)
  if (!(is.character(index) && length(index) == 1L && index %in% c("i", "j"))) {
    lk_argument_error(sprintf("index must be \"i\" or \"j\" (the index reduced over), got %s",
                              lk_show(index)), call = sys.call(-1))
  }
  if (!is.null(K) && !(is.numeric(K) && length(K) == 1L && !is.na(K) && K == round(K))) {
    lk_argument_error("K must be a positive integer", call = sys.call(-1))
  }
  if (!is.null(weight)) lk_check_lazy(weight, "weight")
  k <- if (is.null(K)) NULL else as.integer(K)
  results <- lk_call("reduce", name, x$py, index, k = k, weight = weight$py,
                     backend = lk_backend())
  lk_results(results)
}

# sum / min / max: R's Summary group; no index: the inner (coordinate) operation
lk_summary <- function(name, x, index) {
  if (length(index) == 1L && is.na(index)) return(lk_unary(name, x))
  lk_reduce(name, x, index)
}

#' @rdname reductions
#' @export
sum.LazyTensor <- function(x, index = NA, ..., na.rm = FALSE) lk_summary("sum", x, index)

#' @rdname reductions
#' @export
min.LazyTensor <- function(x, index = NA, ..., na.rm = FALSE) lk_summary("min", x, index)

#' @rdname reductions
#' @export
max.LazyTensor <- function(x, index = NA, ..., na.rm = FALSE) lk_summary("max", x, index)

#' @export
Summary.LazyTensor <- function(..., na.rm = FALSE) {
  lk_argument_error(sprintf("%s() is not defined on LazyTensors", .Generic))
}

#' @rdname reductions
#' @export
argmin <- function(x, index = NA) lk_summary("argmin", x, index)

#' @rdname reductions
#' @export
argmax <- function(x, index = NA) lk_summary("argmax", x, index)

#' @rdname reductions
#' @export
sum_reduction <- function(x, index) lk_reduce("sum", x, index)

#' @rdname reductions
#' @export
min_reduction <- function(x, index) lk_reduce("min", x, index)

#' @rdname reductions
#' @export
max_reduction <- function(x, index) lk_reduce("max", x, index)

#' @rdname reductions
#' @export
argmin_reduction <- function(x, index) lk_reduce("argmin", x, index)

#' @rdname reductions
#' @export
argmax_reduction <- function(x, index) lk_reduce("argmax", x, index)

#' @rdname reductions
#' @export
min_argmin <- function(x, index) lk_reduce("min_argmin", x, index)

#' @rdname reductions
#' @export
max_argmax <- function(x, index) lk_reduce("max_argmax", x, index)

#' @rdname reductions
#' @export
Kmin <- function(x, K, index) lk_reduce("Kmin", x, index, K = K)

#' @rdname reductions
#' @export
argKmin <- function(x, K, index) lk_reduce("argKmin", x, index, K = K)

#' @rdname reductions
#' @export
Kmin_argKmin <- function(x, K, index) lk_reduce("Kmin_argKmin", x, index, K = K)

#' @rdname reductions
#' @export
logsumexp <- function(x, index, weight = NULL) lk_reduce("logsumexp", x, index, weight = weight)

#' @rdname reductions
#' @export
sumsoftmaxweight <- function(x, index, weight) {
  lk_reduce("sumsoftmaxweight", x, index, weight = weight)
}

# RKeOps's *_reduction spellings
#' @rdname reductions
#' @export
min_argmin_reduction <- min_argmin
#' @rdname reductions
#' @export
max_argmax_reduction <- max_argmax
#' @rdname reductions
#' @export
Kmin_reduction <- Kmin
#' @rdname reductions
#' @export
argKmin_reduction <- argKmin
#' @rdname reductions
#' @export
Kmin_argKmin_reduction <- Kmin_argKmin
#' @rdname reductions
#' @export
logsumexp_reduction <- logsumexp
#' @rdname reductions
#' @export
sumsoftmaxweight_reduction <- sumsoftmaxweight

#' Matrix product with a LazyTensor
#'
#' `K %*% b` is `sum_j K[i, j] b[j, ]`: `b` a matrix (or vector) with one row per `j`,
#' or a LazyTensor (then `sum(K * b, "j")`). For anything but a LazyTensor on the left,
#' this is base R's `%*%`.
#' @param x a LazyTensor of dimension 1 (a symbolic matrix), or anything base R takes.
#' @param y a numeric matrix or vector with one row per `j`, or a LazyTensor.
#' @return A matrix with one row per `i`.
#' @export
`%*%` <- function(x, y) {
  if (!inherits(x, "LazyTensor")) return(base::`%*%`(x, y))
  if (inherits(y, "LazyTensor")) return(lk_reduce("sum", x * y, "j"))
  if (is.null(dim(y))) y <- matrix(y, ncol = 1L)
  v <- lk_matrix_to_py(y, x$dtype, "the right operand of %*%")
  lk_results(lk_call("matmul", x$py, v, backend = lk_backend()))
}

#' Kernel ridge systems: solve (alpha Id + K) a = b by conjugate gradient
#'
#' @param a a LazyTensor: the symbolic, symmetric positive (semi-)definite matrix `K`
#'   (of dimension 1, or of the dimension of `b`).
#' @param b the right-hand side: a matrix (or vector) with one row per `i`, or a
#'   LazyTensor made by `Vi()`.
#' @param alpha the ridge `alpha`.
#' @param eps tolerance of the conjugate gradient (per column of `b`).
#' @param max_iter most iterations (default `10 * n + 100`); a warning says when the cap
#'   stopped them.
#' @param ... ignored.
#' @return The solution `a`, of the shape of `b`.
#' @examples
#' \dontrun{
#' x <- matrix(runif(2000), 1000, 2)
#' K <- exp(-sum((Vi(x) - Vj(x))^2) / 0.1)
#' a <- solve(K, sin(10 * x[, 1]), alpha = 0.1)
#' }
#' @export
solve.LazyTensor <- function(a, b, alpha = 1e-10, eps = 1e-6, max_iter = NULL, ...) {
  vector <- !inherits(b, "LazyTensor") && is.null(dim(b))
  rhs <- if (inherits(b, "LazyTensor")) {
    b$py
  } else {
    lk_matrix_to_py(if (vector) matrix(b, ncol = 1L) else b, a$dtype, "b")
  }
  if (!is.null(max_iter)) max_iter <- as.integer(max_iter)
  out <- lk_results(lk_call("solve", a$py, rhs, as.double(alpha), as.double(eps), max_iter,
                            backend = lk_backend()))
  if (vector) drop(out) else out
}
