# The R half of the bridge to the Python module lazykernels.numpy.r_bridge: the one entry
# point (lk_call), errors as R conditions, and R arrays to and from Python as bytes.
#
# Data cross as the bytes of R's column-major values (writeBin / readBin), not through
# reticulate's NumPy conversion: Debian's reticulate 1.28 refuses NumPy 2 arrays, and the
# bytes path behaves the same under every reticulate version. R converts doubles to 4-byte
# floats while writing when dtype = "float32"; Python copies the bytes once into the
# C-ordered (points, dim) array the kernels read (see r_bridge.from_r).

.lk <- new.env(parent = emptyenv())

# The bridge's entry point lazykernels.numpy.r_bridge.call, imported at the first call (not
# at load, so that library(lazykernels) works before Python is configured); a failed import
# is retried at the next call. Kept as a function: no attribute lookup per call.
lk_bridge <- function() {
  if (is.null(.lk$call)) {
    .lk$call <- tryCatch(
      reticulate::import("lazykernels.numpy.r_bridge", convert = FALSE)$call,
      error = lk_python_missing
    )
  }
  .lk$call
}

lk_python_missing <- function(e) {
  lk_abort(
    "lazykernels_BackendError",
    paste0(
      "the Python package 'lazykernels' could not be imported by reticulate (",
      trimws(conditionMessage(e)), "). Install it in the Python that reticulate uses ",
      "(pip install lazykernels) or point RETICULATE_PYTHON at a Python that has it."
    )
  )
}

#' Call an entry of the Python bridge; raise its lazykernels errors as R conditions.
#' @noRd
lk_call <- function(entry, ...) {
  res <- lk_bridge()(entry, ...)
  if (inherits(res, "lazykernels.numpy.r_bridge.RError")) {
    lk_abort(unlist(reticulate::py_to_r(res$classes)), reticulate::py_to_r(res$message),
             call = sys.call(-1))
  }
  res
}

#' Signal a lazykernels error condition.
#'
#' Every error of the package is a condition of class `lazykernels_error`, with the
#' class of the lazykernels exception in front (`lazykernels_FormulaError`,
#' `lazykernels_ShapeError`, `lazykernels_ArgumentError`, `lazykernels_DtypeError`, ...)
#' and lazykernels's message, caret under a malformed formula included.
#' @noRd
lk_abort <- function(classes, message, call = sys.call(-1)) {
  if (!"lazykernels_error" %in% classes) classes <- c(classes, "lazykernels_error")
  stop(structure(
    class = c(classes, "error", "condition"),
    list(message = message, call = call)
  ))
}

lk_argument_error <- function(message, call = sys.call(-1)) {
  lk_abort("lazykernels_ArgumentError", message, call = call)
}

lk_default_dtype <- function() getOption("lazykernels.dtype", "float64")

lk_backend <- function() getOption("lazykernels.backend", "auto")

lk_check_dtype <- function(dtype) {
  if (!(is.character(dtype) && length(dtype) == 1L && dtype %in% c("float32", "float64"))) {
    lk_argument_error(
      sprintf("dtype must be \"float32\" or \"float64\", got %s", lk_show(dtype)),
      call = sys.call(-1)
    )
  }
  dtype
}

lk_show <- function(x) paste(deparse(x, width.cutoff = 40L, nlines = 1L), collapse = "")

lk_check_numeric <- function(x, what) {
  if (!(is.numeric(x) || is.logical(x)) || (is.object(x) && !is.matrix(x))) {
    lk_argument_error(
      sprintf("%s must be a numeric matrix or vector, got %s", what, class(x)[1]),
      call = sys.call(-1)
    )
  }
}

lk_bytes <- function(x, dtype) {
  if (!is.double(x)) storage.mode(x) <- "double"
  writeBin(as.vector(x), raw(), size = if (dtype == "float32") 4L else 8L)
}

#' An R matrix (or vector: one column) as the C-ordered (points, dim) NumPy array.
#'
#' inner = "col": one point per row (n x D); "row": one point per column (D x n).
#' @noRd
lk_matrix_to_py <- function(x, dtype, what, inner = "col") {
  lk_check_numeric(x, what)
  d <- dim(x)
  if (is.null(d)) {
    d <- if (inner == "row") c(1L, length(x)) else c(length(x), 1L)
  } else if (length(d) != 2L) {
    lk_argument_error(sprintf("%s must be a matrix, got an array with %d dimensions",
                              what, length(d)), call = sys.call(-1))
  }
  lk_call("from_r", lk_bytes(x, dtype), d[[1]], d[[2]], dtype, inner)
}

#' A numeric vector (a parameter's values) as a 1-D NumPy array.
#' @noRd
lk_vector_to_py <- function(x, dtype, what) {
  lk_check_numeric(x, what)
  lk_call("vector_from_r", lk_bytes(x, dtype), dtype)
}

#' R arrays from the bridge's (bytes, dim, kind) results: one array, or a list of two.
#' @noRd
lk_results <- function(results, names = c("values", "indices")) {
  out <- lapply(reticulate::py_to_r(results), lk_result)
  if (length(out) == 1L) out[[1]] else stats::setNames(out, names[seq_along(out)])
}

lk_result <- function(r) {
  dims <- as.integer(unlist(r[[2]]))
  kind <- r[[3]]
  n <- prod(dims)
  values <- switch(kind,
    integer = readBin(r[[1]], "integer", n = n, size = 4L),
    float32 = readBin(r[[1]], "double", n = n, size = 4L),
    readBin(r[[1]], "double", n = n, size = 8L)
  )
  if (length(dims) >= 2L) dim(values) <- dims
  values
}
