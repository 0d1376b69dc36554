//! test
uniffi::setup_scaffolding!();

/// A thing.
#[derive(uniffi::Record)]
pub struct Thing {
    /// a
    pub a: u32,
    /// b
    #[uniffi(default)]
    pub b: Option<String>,
}

/// Foreign.
#[uniffi::export(with_foreign)]
pub trait Listener: Send + Sync {
    /// x
    fn on(&self, x: u32);
}

/// f
#[uniffi::export(default(l = None))]
pub fn f(t: Thing, l: Option<std::sync::Arc<dyn Listener>>) -> u32 {
    if let Some(l) = l {
        l.on(t.a);
    }
    t.a
}
