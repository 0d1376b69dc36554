//! The fuzz targets' checks (`checks.rs`), as a library the targets in `fuzz_targets/` call.
//! See `fuzz/README.md`.

pub mod checks;
