//! weft-tests: end-to-end tests and the conformance runner's shared helpers.
