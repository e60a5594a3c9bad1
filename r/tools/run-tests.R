# Runs the testthat tests of r/tests/testthat against the INSTALLED package lazykernels
# (as .ci/run does after R CMD INSTALL) and ends with a "testthat: N passed, N failed" line;
# the exit status is 1 when an expectation failed or a test errored.
#   Rscript r/tools/run-tests.R [tests directory]
args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args)) args[[1]] else file.path("r", "tests", "testthat")
library(testthat)
results <- as.data.frame(test_dir(
  dir,
  package = "lazykernels", load_package = "installed",
  reporter = "summary", stop_on_failure = FALSE
))
passed <- sum(results$passed)
failed <- sum(results$failed) + sum(results$error)
cat(sprintf("testthat: %d passed, %d failed, %d skipped\n",
            passed, failed, sum(results$skipped)))
quit(status = if (failed > 0 || passed == 0) 1L else 0L)
