# Errors arrive as R conditions of lazykernels's classes, with lazykernels's message

test_that("a malformed formula gives a FormulaError whose message has the caret", {
  err <- tryCatch(keops_kernel("Sum_Reduction(Exq(x), 0)", "x = Vi(1)"), error = identity)
  expect_s3_class(err, "lazykernels_FormulaError")
  expect_s3_class(err, "lazykernels_error")
  lines <- strsplit(conditionMessage(err), "\n")[[1]]
  expect_match(lines[1], "unknown operation 'Exq'", fixed = TRUE)
  caret <- regexpr("^", lines[3], fixed = TRUE)
  expect_equal(substr(lines[2], caret, caret + 2), "Exq") # the caret points at Exq
})

test_that("bad data and bad arguments give lazykernels conditions naming the problem", {
  op <- keops_kernel("Sum_Reduction(SqDist(x, y), 0)", c("x = Vi(3)", "y = Vj(3)"))
  x <- matrix(1, 4, 3)
  expect_error(op(list(x, matrix(1, 5, 2))), class = "lazykernels_error", regexp = "dimension|3")
  expect_error(op(list(x)), class = "lazykernels_ArgumentError", regexp = "takes 2 inputs")
  expect_error(op(list(x, z = x)), class = "lazykernels_ArgumentError", regexp = "z")
  expect_error(op(list(x, x), dtype = "float16"), class = "lazykernels_ArgumentError",
               regexp = "float32")
  expect_error(op(list(x, "a")), class = "lazykernels_ArgumentError", regexp = "numeric")
  expect_error(keops_grad(op, 3), class = "lazykernels_ArgumentError", regexp = "1-based")
  expect_error(keops_grad(op, "w"), class = "lazykernels_ArgumentError", regexp = "'w'")
  expect_error(keops_grad(sum, "x"), class = "lazykernels_ArgumentError", regexp = "keops_kernel")
  expect_error(argKmin(Vi(x), 2, "k"), class = "lazykernels_ArgumentError", regexp = "index")
  expect_error(Vi(x) + matrix(1, 3, 3), class = "lazykernels_ArgumentError", regexp = "Vi")
  expect_error(elem(Vi(x), 4), class = "lazykernels_ArgumentError", regexp = "1-based")
  expect_error(Vi(x) %% 2, class = "lazykernels_ArgumentError", regexp = "%%")
  expect_error(Vi(x) + Vi(matrix(1, 5, 3)), class = "lazykernels_error")
})

test_that("a Python without lazykernels gives a BackendError saying what to do, at every call", {
  # a bare virtual environment: a Python that cannot see any installed lazykernels
  base <- Sys.which("python3")
  skip_if(base == "", "no python3 on the PATH")
  venv <- tempfile("bare-venv")
  skip_if(system2(base, c("-m", "venv", "--without-pip", venv)) != 0, "python3 -m venv failed")
  python <- file.path(venv, "bin", "python")
  script <- tempfile(fileext = ".R")
  writeLines(c(
    "library(lazykernels)",
    "for (k in 1:2) {",
    "  e <- tryCatch(Vi(matrix(1, 2, 2)), error = identity)",
    "  cat(class(e)[1], conditionMessage(e), '\\n')",
    "}"
  ), script)
  out <- system2(file.path(R.home("bin"), "Rscript"), script, stdout = TRUE, stderr = TRUE,
                 env = c(paste0("RETICULATE_PYTHON=", python), "PYTHONPATH=",
                         paste0("R_LIBS=", paste(.libPaths(), collapse = ":"))))
  hits <- grep("^lazykernels_BackendError .*RETICULATE_PYTHON", out)
  expect_length(hits, 2L)
})
