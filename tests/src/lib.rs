//! Helpers shared by the integration tests in `tests/tests/`.

use std::path::PathBuf;

/// `../shared/data/` relative to the workspace root: reference data kept outside the project.
pub fn shared_data(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(relative)
}

pub mod fake_twilio;
