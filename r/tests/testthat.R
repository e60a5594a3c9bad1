library(testthat)
library(lazykernels)

test_check("lazykernels")
