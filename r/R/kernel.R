#' Define a reduction operator from a formula string (RKeOps's `keops_kernel`)
#'
#' Compiles (once, then cached on disk) the reduction written in `formula` and returns
#' an R function that computes it on data.
#'
#' @param formula a string `"<Reduction>_Reduction(F, tag)"` in KeOps's formula language,
#'   e.g. `"Sum_Reduction(Exp(-SqDist(x, y) / s) * b, 0)"`. `tag` is KeOps's: `0` gives
#'   one output row per `i` (the reduction runs over `j`), `1` one output row per `j`.
#'   Reductions: `Sum`, `Min`, `Max`, `ArgMin`, `ArgMax`, `Min_ArgMin`, `Max_ArgMax`,
#'   `KMin(F, K, tag)`, `ArgKMin`, `KMin_ArgKMin`, `LogSumExp`, `SumSoftMaxWeight(F, tag,
#'   G)`, ...
#' @param args a character vector declaring every name of the formula:
#'   `c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)")` (`Vi`: one row per `i`,
#'   `Vj`: one row per `j`, `Pm`: a parameter vector).
#' @param sum_scheme `"auto"`, `"direct_sum"`, `"block_sum"` or `"kahan_scheme"`
#'   (accumulation of sum-type reductions).
#' @param dtype `"float64"` or `"float32"`: the precision of the computation (the data
#'   are converted once per call). Default: `getOption("lazykernels.dtype", "float64")`
#'   when the operator is called.
#' @return A function `op(input, inner_dim = "col", dtype = NULL)`. `input` is a list of
#'   the data in the order of `args` (or named by their names): matrices with one row per
#'   point for `Vi` / `Vj` (a vector for dimension 1), numeric vectors for `Pm`. With
#'   `inner_dim = "row"` the matrices have one point per column and the output is
#'   transposed likewise. The result is a matrix with one row per output index; indices
#'   (`ArgMin`, `ArgKMin`, ...) are 1-based integers; `Min_ArgMin` and the like return
#'   `list(values, indices)`.
#' @seealso [keops_grad()], [LazyTensor()]
#' @examples
#' \dontrun{
#' op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y) / s) * b, 0)",
#'                    c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)"))
#' x <- matrix(runif(300), 100, 3); y <- matrix(runif(600), 200, 3)
#' res <- op(list(x, y, runif(200), 0.5)) # 100 x 1
#' }
#' @export
keops_kernel <- function(formula, args, sum_scheme = "auto", dtype = NULL) {
  if (!(is.character(formula) && length(formula) == 1L)) {
    lk_argument_error("formula must be a single string")
  }
  if (!is.character(args)) {
    lk_argument_error("args must be a character vector such as c(\"x = Vi(3)\")")
  }
  if (!is.null(dtype)) lk_check_dtype(dtype)
  op <- lk_call("kernel", formula, as.list(args), sum_scheme)
  lk_operator(op, dtype)
}

#' Gradient operator of a reduction operator (RKeOps's `keops_grad`)
#'
#' @param operator a function returned by [keops_kernel()]. A gradient operator is not
#'   differentiated again: write a second derivative with `Grad` in a formula instead.
#' @param var the input to differentiate with respect to: its name in `args`, or its
#'   1-based position (RKeOps counts from 0).
#' @return A function `op(input, inner_dim = "col", dtype = NULL)` taking the inputs of
#'   `operator` followed by `eta`, a matrix of the shape of `operator`'s output, and
#'   returning the gradient of `sum(eta * operator(input))` with respect to `var`: a
#'   matrix with one row per row of `var`, or a vector for a parameter. Sum, LogSumExp
#'   and SumSoftMaxWeight reductions are differentiable.
#' @examples
#' \dontrun{
#' op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)",
#'                    c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)"))
#' dx <- keops_grad(op, "x")
#' g <- dx(list(x, y, b, eta = matrix(1, nrow(x), 1))) # nrow(x) x 3
#' }
#' @export
keops_grad <- function(operator, var) {
  op <- attr(operator, "lazykernels_operator")
  if (is.null(op)) lk_argument_error("operator must be a function made by keops_kernel()")
  if (!((is.character(var) || is.numeric(var)) && length(var) == 1L && !is.na(var))) {
    lk_argument_error("var must be an input name or a 1-based position")
  }
  lk_operator(lk_call("grad", op, var), attr(operator, "lazykernels_dtype"))
}

lk_operator <- function(op, dtype) {
  inputs <- reticulate::py_to_r(lk_call("inputs", op))
  names <- vapply(inputs, function(s) s[[1]], "")
  cats <- vapply(inputs, function(s) s[[2]], "")
  f <- function(input, inner_dim = "col", dtype = NULL) {
    dtype <- lk_check_dtype(if (is.null(dtype)) kernel_dtype %||% lk_default_dtype() else dtype)
    if (!(is.character(inner_dim) && length(inner_dim) == 1L && inner_dim %in% c("col", "row"))) {
      lk_argument_error("inner_dim must be \"col\" (one point per row) or \"row\"")
    }
    input <- lk_match_inputs(input, names)
    arrays <- lapply(seq_along(input), function(k) {
      what <- sprintf("input '%s'", names[[k]])
      if (cats[[k]] == "Pm") {
        lk_vector_to_py(input[[k]], dtype, what)
      } else {
        lk_matrix_to_py(input[[k]], dtype, what, inner_dim)
      }
    })
    lk_results(lk_call("run", op, arrays, inner_dim, lk_backend()))
  }
  kernel_dtype <- dtype
  attr(f, "lazykernels_operator") <- op
  attr(f, "lazykernels_dtype") <- dtype
  attr(f, "lazykernels_inputs") <- names
  class(f) <- c("lazykernels_operator", "function")
  f
}

`%||%` <- function(a, b) if (is.null(a)) b else a

# The inputs in the operator's order: positional, named, or both (as R matches arguments:
# the named ones by name, the others in order into the remaining places).
lk_match_inputs <- function(input, names) {
  if (!is.list(input) || is.data.frame(input)) {
    lk_argument_error(sprintf(
      "input must be a list of the data, in the order %s (or named by them)",
      paste(names, collapse = ", ")
    ), call = sys.call(-1))
  }
  given <- names(input) %||% rep("", length(input))
  named <- given != ""
  unknown <- setdiff(given[named], names)
  if (length(unknown) || anyDuplicated(given[named])) {
    lk_argument_error(sprintf(
      "the inputs are named %s; got the name(s) %s",
      paste(names, collapse = ", "),
      paste(if (length(unknown)) unknown else given[named][duplicated(given[named])],
            collapse = ", ")
    ), call = sys.call(-1))
  }
  if (length(input) != length(names)) {
    lk_argument_error(sprintf(
      "the operator takes %d inputs (%s), got %d",
      length(names), paste(names, collapse = ", "), length(input)
    ), call = sys.call(-1))
  }
  order <- c(given[named], setdiff(names, given[named]))
  stats::setNames(c(input[named], input[!named]), order)[names]
}

#' @export
print.lazykernels_operator <- function(x, ...) {
  cat("lazykernels operator; inputs:", paste(attr(x, "lazykernels_inputs"), collapse = ", "),
      "\n")
  invisible(x)
}
