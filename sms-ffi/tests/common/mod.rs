//! What the facade's test files share: a client's configuration on the simulator in a
//! temporary folder, and recipients.
#![allow(dead_code)] // each test file uses its own part

use std::collections::HashMap;

use sms_ffi::{ProviderConfig, Recipient, RecipientKind, SmsConfig};

/// The simulator, no rate limit, webhooks signed with `hook-token`, SQLite in `dir`.
pub fn config(dir: &tempfile::TempDir) -> SmsConfig {
    SmsConfig {
        database: dir.path().join("sms.db").display().to_string(),
        provider: ProviderConfig::Simulator,
        region: "US".to_owned(),
        program_year: None,
        current_program_year: None,
        price_per_segment: None,
        currency: "USD".to_owned(),
        smart_encoding: false,
        rate_per_second: Some(0.0),
        concurrency: 4,
        once_per_number: false,
        reconcile_wait_seconds: 30,
        max_campaign_age_hours: 24,
        webhook_auth_token: Some("hook-token".to_owned()),
        opt_out_keywords_only: false,
        organisation: "default".to_owned(),
    }
}

/// A client who permits texts, named after its id.
pub fn client(id: &str, mobile: &str) -> Recipient {
    Recipient {
        record_id: id.to_owned(),
        kind: RecipientKind::Client {
            permitted_marketing_methods: "Email, Text".to_owned(),
        },
        first_name: format!("First{id}"),
        last_name: "Lee".to_owned(),
        mobile: mobile.to_owned(),
        time_zone: None,
        fields: HashMap::new(),
    }
}

/// `n` clients on distinct numbers.
pub fn many(n: usize) -> Vec<Recipient> {
    (0..n)
        .map(|i| client(&i.to_string(), &format!("212555{:04}", 1000 + i)))
        .collect()
}
