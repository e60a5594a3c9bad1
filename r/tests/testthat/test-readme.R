# The R code block of the repository's README runs (when the tests run from a checkout)

test_that("the README's R quick start runs", {
  readme <- test_path("..", "..", "..", "README.md")
  skip_if_not(file.exists(readme), "not run from a checkout of the repository")
  text <- paste(readLines(readme, warn = FALSE), collapse = "\n")
  blocks <- regmatches(text, gregexpr("```r\n.*?```", text))[[1]]
  expect_length(blocks, 1L)
  code <- sub("^```r\n", "", sub("```$", "", blocks[[1]]))
  env <- new.env()
  expect_no_error(eval(parse(text = code), envir = env))
  # and it computed what it says, on a few rows checked densely
  D <- sqdist_dense(env$x[1:5, ], env$y)
  expect_equal(env$out[1:5, , drop = FALSE], base::`%*%`(exp(-D / 0.1), env$b),
               tolerance = 1e-10)
  expect_equal(env$nn[1:5, ], kmin_index_dense(D, 5))
})
