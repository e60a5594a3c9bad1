#' Symbolic matrices: LazyTensor, Vi, Vj, Pm
#'
#' A `LazyTensor` is a symbolic matrix `K[i, j] = F(x_i, y_j, p)` that is never stored:
#' combine LazyTensors with the operators `+ - * / ^` (and `|`, the scalar product),
#' `exp`, `log`, `sqrt`, `abs`, `sin`, `cos`, ..., `sum(x)` (over the vector's
#' coordinates), then reduce it with [sum_reduction()], [logsumexp()], [argKmin()], `%*%`,
#' [solve()]...
#'
#' @param x a numeric matrix with one row per point (a vector: one coordinate per point)
#'   for `index = "i"` or `"j"`; a numeric vector for a parameter (`index = NA`).
#' @param index `"i"` (the rows are indexed by i), `"j"`, or `NA`: a parameter vector.
#' @param dtype `"float64"` or `"float32"`: every LazyTensor of one formula must share it.
#'   Default `getOption("lazykernels.dtype", "float64")`.
#' @return A `LazyTensor`. Its data are converted once, here.
#' @examples
#' \dontrun{
#' x_i <- Vi(matrix(runif(300), 100, 3))
#' y_j <- Vj(matrix(runif(600), 200, 3))
#' K <- exp(-sum((x_i - y_j)^2) / 0.5) # symbolic 100 x 200 Gaussian kernel
#' Kb <- K %*% runif(200)               # 100 x 1: sum_j K_ij b_j
#' nn <- argKmin(sum((x_i - y_j)^2), 5, "j") # 100 x 5 indices (1-based)
#' }
#' @export
LazyTensor <- function(x, index = NA, dtype = lk_default_dtype()) {
  if (inherits(x, "LazyTensor")) return(x)
  lk_check_dtype(dtype)
  if (is.complex(x)) lk_argument_error("complex LazyTensors are not supported from R")
  if (length(index) != 1L) lk_argument_error("index must be \"i\", \"j\" or NA")
  if (is.na(index)) {
    if (is.matrix(x) && !any(dim(x) == 1L)) {
      lk_argument_error("a matrix needs index = \"i\" or \"j\"; a parameter is a vector")
    }
    data <- lk_vector_to_py(x, dtype, "a parameter")
    index <- "p"
  } else if (index %in% c("i", "j")) {
    data <- lk_matrix_to_py(x, dtype, sprintf("the data of a LazyTensor indexed by %s", index))
  } else {
    lk_argument_error(sprintf("index must be \"i\", \"j\" or NA, got %s", lk_show(index)))
  }
  lk_new(lk_call("variable", data, index), dtype)
}

#' @rdname LazyTensor
#' @export
Vi <- function(x, dtype = lk_default_dtype()) LazyTensor(x, "i", dtype)

#' @rdname LazyTensor
#' @export
Vj <- function(x, dtype = lk_default_dtype()) LazyTensor(x, "j", dtype)

#' @rdname LazyTensor
#' @export
Pm <- function(x, dtype = lk_default_dtype()) LazyTensor(x, NA, dtype)

#' @rdname LazyTensor
#' @export
is.LazyTensor <- function(x) inherits(x, "LazyTensor")

lk_new <- function(py, dtype) structure(list(py = py, dtype = dtype), class = "LazyTensor")

lk_check_lazy <- function(x, what = "x") {
  if (!inherits(x, "LazyTensor")) {
    lk_argument_error(sprintf("%s must be a LazyTensor, got %s", what, class(x)[1]),
                      call = sys.call(-1))
  }
}

# An operand of a binary operation: a LazyTensor, a number, or a vector (a parameter of
# the other operand's dtype). Matrices are refused: say Vi() or Vj().
lk_operand <- function(x, other) {
  if (inherits(x, "LazyTensor")) return(x$py)
  if (is.matrix(x) && !any(dim(x) == 1L)) {
    lk_argument_error("a matrix operand needs Vi() or Vj() to say how it is indexed",
                      call = sys.call(-1))
  }
  lk_check_numeric(x, "an operand")
  if (length(x) == 1L) return(as.double(x))
  lk_call("variable", lk_vector_to_py(x, other$dtype, "an operand"), "p")
}

lk_binary <- function(name, x, y) {
  lazy <- if (inherits(x, "LazyTensor")) x else y
  lk_new(lk_call("binary", name, lk_operand(x, lazy), lk_operand(y, lazy)), lazy$dtype)
}

lk_unary <- function(name, x) {
  lk_check_lazy(x)
  lk_new(lk_call("unary", name, x$py), x$dtype)
}

#' @export
Ops.LazyTensor <- function(e1, e2) {
  if (missing(e2)) {
    if (.Generic == "-") return(lk_unary("neg", e1))
    if (.Generic == "+") return(e1)
  } else if (.Generic %in% c("+", "-", "*", "/", "^", "|")) {
    return(lk_binary(.Generic, e1, e2))
  }
  lk_argument_error(sprintf("the operator %s is not defined on LazyTensors", .Generic))
}

#' @export
Math.LazyTensor <- function(x, ...) {
  known <- c("exp", "log", "sqrt", "abs", "sin", "cos", "asin", "acos", "atan", "sign",
             "floor")
  if (!.Generic %in% known || length(list(...))) {
    lk_argument_error(sprintf("%s() is not defined on LazyTensors (or not with these arguments)",
                              .Generic))
  }
  lk_unary(.Generic, x)
}

#' Element-wise and vector operations on LazyTensors
#'
#' `square(x)` is `x^2`, `rsqrt(x)` is `1 / sqrt(x)`, `inv(x)` is `1 / x`, `relu(x)` is
#' `max(x, 0)`, `step(x)` is `x >= 0`, `xlogx(x)` is `x * log(x)`, `sinxdivx(x)` is
#' `sin(x) / x`; `sqnorm2(x)` is `sum(x^2)`, `norm2(x)` its square root, `normalize(x)`
#' is `x / norm2(x)`, `sqdist(x, y)` is `sqnorm2(x - y)`, `concat(x, y)` stacks the
#' coordinates, `elem(x, m)` is the `m`-th coordinate and `extract(x, m, d)` the
#' coordinates `m` to `m + d - 1` (1-based).
#' @param x,y LazyTensors (or a number for `y`).
#' @param m first coordinate, 1-based.
#' @param d number of coordinates.
#' @return A LazyTensor.
#' @name lazytensor-ops
NULL

#' @rdname lazytensor-ops
#' @export
square <- function(x) lk_unary("square", x)
#' @rdname lazytensor-ops
#' @export
rsqrt <- function(x) lk_unary("rsqrt", x)
#' @rdname lazytensor-ops
#' @export
inv <- function(x) lk_unary("inv", x)
#' @rdname lazytensor-ops
#' @export
relu <- function(x) lk_unary("relu", x)
#' @rdname lazytensor-ops
#' @param ... for anything but a LazyTensor, `step()` is [stats::step()].
#' @export
step <- function(x, ...) {
  if (!inherits(x, "LazyTensor")) return(stats::step(x, ...))
  lk_unary("step", x)
}
#' @rdname lazytensor-ops
#' @export
xlogx <- function(x) lk_unary("xlogx", x)
#' @rdname lazytensor-ops
#' @export
sinxdivx <- function(x) lk_unary("sinxdivx", x)
#' @rdname lazytensor-ops
#' @export
sqnorm2 <- function(x) lk_unary("sqnorm2", x)
#' @rdname lazytensor-ops
#' @export
norm2 <- function(x) lk_unary("norm2", x)
#' @rdname lazytensor-ops
#' @export
normalize <- function(x) lk_unary("normalize", x)
#' @rdname lazytensor-ops
#' @export
sqdist <- function(x, y) lk_binary("sqdist", x, y)
#' @rdname lazytensor-ops
#' @export
concat <- function(x, y) lk_binary("concat", x, y)
#' @rdname lazytensor-ops
#' @export
elem <- function(x, m) {
  lk_check_lazy(x)
  lk_new(lk_call("elem", x$py, as.integer(m)), x$dtype)
}
#' @rdname lazytensor-ops
#' @export
extract <- function(x, m, d) {
  lk_check_lazy(x)
  lk_new(lk_call("extract", x$py, as.integer(m), as.integer(d)), x$dtype)
}

#' @export
print.LazyTensor <- function(x, ...) {
  info <- reticulate::py_to_r(lk_call("describe", x$py))
  size <- function(n) if (is.null(n)) "-" else format(n, big.mark = ",")
  cat(sprintf("LazyTensor of dimension %d, %s (i) x %s (j), %s\n  %s\n",
              info[[2]], size(info[[3]]), size(info[[4]]), info[[5]], info[[1]]))
  invisible(x)
}
