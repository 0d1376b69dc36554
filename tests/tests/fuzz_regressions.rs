//! Every input the fuzzers saved, replayed with plain `cargo test` through the same checks the
//! fuzz targets run (`fuzz/src/checks.rs`, compiled in here by path): each crash once found
//! (`fuzz/regressions/TARGET/`) stays a regression test, and the minimised corpora
//! (`fuzz/corpus/TARGET/`, the inputs that reach every branch found so far) run on every
//! machine, cargo-fuzz installed or not.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/checks.rs"]
mod checks;

/// `fuzz/` in this repository.
fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Replays every file under `folder/TARGET/` through the check of TARGET; returns how many
/// files ran and, for each that failed, its path and the panic message.
fn replay(folder: &str) -> (usize, Vec<String>) {
    let root = fuzz_dir().join(folder);
    let mut ran = 0;
    let mut failures = Vec::new();
    let mut targets: Vec<_> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("reading {}: {e}", root.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    targets.sort();
    for dir in targets {
        let target = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("target folders have UTF-8 names")
            .to_owned();
        assert!(
            checks::TARGETS.contains(&target.as_str()),
            "{} names no fuzz target (known: {:?})",
            dir.display(),
            checks::TARGETS
        );
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|path| path.is_file() && !is_note(path))
            .collect();
        files.sort();
        for file in files {
            let data = fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            ran += 1;
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| checks::check(&target, &data))) {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                failures.push(format!("{}: {message}", file.display()));
            }
        }
    }
    (ran, failures)
}

/// A README or note beside the inputs, not an input.
fn is_note(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "md")
}

#[test]
fn every_crash_the_fuzzers_found_stays_fixed() {
    let (ran, failures) = replay("regressions");
    assert!(ran > 0, "no saved crash found under fuzz/regressions");
    assert!(
        failures.is_empty(),
        "{} of {ran} saved crashes fail again:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_corpus_input_passes_the_checks() {
    let (ran, failures) = replay("corpus");
    assert!(
        ran >= checks::TARGETS.len(),
        "only {ran} corpus inputs under fuzz/corpus"
    );
    assert!(
        failures.is_empty(),
        "{} of {ran} corpus inputs fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_target_has_a_corpus() {
    for target in checks::TARGETS {
        let dir = fuzz_dir().join("corpus").join(target);
        let inputs = fs::read_dir(&dir).map_or(0, |entries| entries.count());
        assert!(inputs > 0, "{} is empty or missing", dir.display());
    }
}
