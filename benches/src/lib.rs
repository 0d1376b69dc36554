//! Shared helpers for the benchmarks in `benches/benches/`.

use std::path::PathBuf;

/// `../shared/data/` relative to the workspace root.
pub fn shared_data(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(relative)
}
