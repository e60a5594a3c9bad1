# R-vs-Python overhead of the R binding: a Gaussian kernel sum on N x N points (default
# 1e5 x 1e5, D = 3, float64) called from R, and the same call from Python.
#
#   Rscript r/bench/r_vs_python.R [N] [D] [dtype] [repeats] [json]
#
# with R_LIBS holding the installed package and RETICULATE_PYTHON a Python that has
# lazykernels. Three timings, each the best of `repeats` after a warm-up:
#   R          exp(-sum((Vi(x) - Vj(y))^2) / 0.5) %*% b, from R matrices to the R result
#              (the data conversions in and out included);
#   Python     the same LazyTensor formula on NumPy arrays of the same data, timed in
#              Python (perf_counter) by the Python that R embeds;
#   Python alone  the same call in a Python process of its own (r/bench/gauss_sum.py).
# R and embedded Python take turns, so that both see the same moments of a machine whose
# load drifts. The R and Python results are checked to agree. Needs jsonlite (a testthat
# dependency).
args <- commandArgs(trailingOnly = TRUE)
arg <- function(k, default) if (length(args) >= k) args[[k]] else default
n <- as.integer(as.numeric(arg(1, "1e5")))
d <- as.integer(arg(2, "3"))
dtype <- arg(3, "float64")
repeats <- as.integer(arg(4, "3"))
json <- arg(5, "")
options(lazykernels.dtype = dtype)
suppressPackageStartupMessages(library(lazykernels))

set.seed(0)
x <- matrix(runif(n * d), n, d)
y <- matrix(runif(n * d), n, d)
b <- matrix(runif(n), n, 1)

r_call <- function(x, y, b) exp(-sum((Vi(x) - Vj(y))^2) / 0.5) %*% b

py <- reticulate::import_main(convert = FALSE)
py$x <- lazykernels:::lk_matrix_to_py(x, dtype, "x")
py$y <- lazykernels:::lk_matrix_to_py(y, dtype, "y")
py$b <- lazykernels:::lk_matrix_to_py(b, dtype, "b")
bench_dir <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(), value = TRUE)))
reticulate::py_run_string(sprintf("
import sys, time
sys.path.insert(0, %s)
from gauss_sum import gauss_sum
def timed():
    start = time.perf_counter()
    out = gauss_sum(x, y, b, 0.5)
    return time.perf_counter() - start, out
", deparse(normalizePath(bench_dir))))

# warm-up: compiles and loads the kernel, on 256 points
invisible(r_call(x[1:256, , drop = FALSE], y[1:256, , drop = FALSE], b[1:256, , drop = FALSE]))
invisible(py$timed())

r_times <- py_times <- numeric(0)
for (k in seq_len(repeats)) {
  start <- proc.time()[["elapsed"]]
  res_r <- r_call(x, y, b)
  r_times <- c(r_times, proc.time()[["elapsed"]] - start)
  timed <- py$timed()
  py_times <- c(py_times, reticulate::py_to_r(reticulate::py_get_item(timed, 0L)))
}
py$res_r <- lazykernels:::lk_matrix_to_py(res_r, "float64", "res_r")
agree <- reticulate::py_to_r(reticulate::py_eval(
  "float(abs(timed()[1] - res_r).max() / abs(res_r).max())", convert = FALSE))

python <- reticulate::py_config()$python
alone <- jsonlite::fromJSON(system2(
  python, c(file.path(bench_dir, "gauss_sum.py"), n, d, dtype, repeats), stdout = TRUE
))
alone_times <- alone$times

summary_line <- function(name, t) {
  sprintf("%-13s best %8.3f s   all: %s", name, min(t), paste(sprintf("%.3f", t), collapse = " "))
}
cat(sprintf("Gaussian kernel sum, %s x %s points, D = %d, %s, %d threads, load %s\n",
            format(n, big.mark = ","), format(n, big.mark = ","), d, dtype,
            parallel::detectCores(), paste(readLines("/proc/loadavg", warn = FALSE), collapse = "")))
cat(summary_line("R", r_times), "\n")
cat(summary_line("Python", py_times), "\n")
cat(summary_line("Python alone", alone_times), "\n")
cat(sprintf("R / Python (best of each): %.3f   R / Python alone: %.3f   max rel. diff R vs Python: %.1e\n",
            min(r_times) / min(py_times), min(r_times) / min(alone_times), agree))
if (nzchar(json)) {
  jsonlite::write_json(list(
    n = n, d = d, dtype = dtype, repeats = repeats, cores = parallel::detectCores(),
    r = r_times, python = py_times, python_alone = alone_times,
    ratio_r_python = min(r_times) / min(py_times),
    ratio_r_python_alone = min(r_times) / min(alone_times), max_rel_diff = agree
  ), json, auto_unbox = TRUE, digits = 6, pretty = TRUE)
}
