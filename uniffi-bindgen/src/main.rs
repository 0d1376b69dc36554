//! `cargo run -p uniffi-bindgen -- generate --library target/debug/libsms_ffi.so --language python --out-dir OUT`
//!
//! The generator must be the same uniffi version as the scaffolding compiled into the library
//! (a mismatch breaks silently at run time); as a workspace binary it always is.

fn main() {
    uniffi::uniffi_bindgen_main()
}
