# Dense base-R references for the tests: every expected value below is computed with outer
# products, exp, %*% and apply on the full matrices, independently of lazykernels.

sqdist_dense <- function(x, y) {
  outer(rowSums(x^2), rowSums(y^2), "+") - 2 * base::`%*%`(x, t(y))
}

gauss_dense <- function(x, y, s) exp(-sqdist_dense(x, y) / s)

# the smallest K entries of each row of m: their 1-based column indices (ties: first)
kmin_index_dense <- function(m, K) {
  t(apply(m, 1, function(r) order(r)[seq_len(K)]))
}

set_points <- function(seed, n, d) {
  set.seed(seed)
  matrix(stats::runif(n * d), n, d)
}
