//! uniffi stays on 0.31.x: the C# and Go generators the host teams use (uniffi-bindgen-cs
//! v0.11.0+v0.31.0, uniffi-bindgen-go v0.7.1+v0.31.0) read 0.31 metadata only, and 0.32 changed
//! it. A `cargo update` that moved any uniffi crate to another minor would build and pass every
//! Rust test while those bindings broke; this reads the workspace's `Cargo.lock` and says so.

use std::path::Path;

/// The crates whose version is the metadata format: uniffi itself and the parts it is made of.
const PINNED: &[&str] = &[
    "uniffi",
    "uniffi_core",
    "uniffi_bindgen",
    "uniffi_macros",
    "uniffi_meta",
];

/// `(name, version)` of every `[[package]]` in a `Cargo.lock`.
fn locked_packages(lock: &str) -> Vec<(String, String)> {
    let mut packages = Vec::new();
    for block in lock.split("[[package]]").skip(1) {
        let field = |key: &str| {
            block.lines().find_map(|line| {
                let value = line.strip_prefix(key)?.trim_start().strip_prefix('=')?;
                Some(value.trim().trim_matches('"').to_string())
            })
        };
        if let (Some(name), Some(version)) = (field("name"), field("version")) {
            packages.push((name, version));
        }
    }
    packages
}

/// The versions of `PINNED` crates outside 0.31.x, as `name version` lines.
fn off_pin(packages: &[(String, String)]) -> Vec<String> {
    packages
        .iter()
        .filter(|(name, version)| PINNED.contains(&name.as_str()) && !version.starts_with("0.31."))
        .map(|(name, version)| format!("{name} {version}"))
        .collect()
}

#[test]
fn cargo_lock_resolves_uniffi_to_0_31() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    let lock = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let packages = locked_packages(&lock);

    let found: Vec<&str> = PINNED
        .iter()
        .copied()
        .filter(|pinned| packages.iter().any(|(name, _)| name == pinned))
        .collect();
    assert_eq!(
        found, PINNED,
        "Cargo.lock no longer has every uniffi crate: was uniffi removed or renamed?"
    );

    let wrong = off_pin(&packages);
    assert!(
        wrong.is_empty(),
        "Cargo.lock resolves uniffi outside 0.31.x, which the C# and Go generators cannot read: {}\n\
         keep `uniffi = \"=0.31.2\"` in [workspace.dependencies] and undo the update",
        wrong.join(", ")
    );
}

#[test]
fn the_check_sees_another_minor() {
    // The same reading of a lock file in which one part of uniffi moved to 0.32: it must be named.
    let lock = "version = 4\n\n[[package]]\nname = \"uniffi\"\nversion = \"0.31.2\"\n\n\
                [[package]]\nname = \"uniffi_core\"\nversion = \"0.32.0\"\nsource = \"registry\"\n\n\
                [[package]]\nname = \"uniffi_core_extra\"\nversion = \"1.0.0\"\n";
    assert_eq!(off_pin(&locked_packages(lock)), ["uniffi_core 0.32.0"]);
}

/// The FFI build keeps unwinding: with `panic = "abort"` a panic (caught today at the boundary
/// and raised as `SmsError.Internal`) would kill the host process instead. No manifest of the
/// workspace may set it, for any profile.
#[test]
fn no_profile_aborts_on_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for manifest in ["Cargo.toml", "sms-ffi/Cargo.toml"] {
        let text = std::fs::read_to_string(root.join(manifest))
            .unwrap_or_else(|e| panic!("reading {manifest}: {e}"));
        let aborts = text.lines().any(|line| {
            let line = line.split('#').next().unwrap_or_default().replace(' ', "");
            line == "panic=\"abort\"" || line == "panic='abort'"
        });
        assert!(
            !aborts,
            "{manifest} sets panic = \"abort\": a panic would kill the host"
        );
    }
}
