//! The fuzz targets' checks as plain functions, one module per target: `fuzz_targets/` runs them
//! under libFuzzer, and the main workspace's `cargo test` replays every corpus file through the
//! same functions (`tests/fuzz_corpus`). See docs/fuzzing.md.

pub mod authorize;
pub mod token_request;
pub mod token_validation;
