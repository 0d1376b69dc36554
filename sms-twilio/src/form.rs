//! `application/x-www-form-urlencoded` as Twilio expects it: arrays as repeated keys
//! (`MediaUrl=a&MediaUrl=b`, never comma-joined), booleans as lower-case `true`/`false`.

/// An ordered list of form fields, encoded the way Twilio's API reads them.
///
/// ```
/// use sms_twilio::Form;
/// let mut form = Form::new();
/// form.push("To", "+15005550006");
/// form.push_bool("SmartEncoded", true);
/// form.push_all("MediaUrl", ["https://a.example/1.png", "https://a.example/2.png"]);
/// assert_eq!(
///     form.encode(),
///     "To=%2B15005550006&SmartEncoded=true&MediaUrl=https%3A%2F%2Fa.example%2F1.png&MediaUrl=https%3A%2F%2Fa.example%2F2.png"
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    /// An empty form.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one field.
    pub fn push(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.fields.push((name.to_owned(), value.into()));
        self
    }

    /// Adds a field when there is a value.
    pub fn push_opt(&mut self, name: &str, value: Option<impl Into<String>>) -> &mut Self {
        if let Some(value) = value {
            self.push(name, value);
        }
        self
    }

    /// Adds a boolean as Twilio reads it (`true`/`false`, lower case).
    pub fn push_bool(&mut self, name: &str, value: bool) -> &mut Self {
        self.push(name, if value { "true" } else { "false" })
    }

    /// Adds an array: one `name=value` pair per element.
    pub fn push_all<I, V>(&mut self, name: &str, values: I) -> &mut Self
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        for value in values {
            self.push(name, value);
        }
        self
    }

    /// The fields in order.
    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    /// The urlencoded body.
    pub fn encode(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.fields.iter())
            .finish()
    }
}

/// Owned form fields from `(name, value)` pairs, in order: what the webhook functions take,
/// built from literals (tests, simulated webhooks).
///
/// ```
/// let fields = sms_twilio::form_fields(&[("From", "+14155552671"), ("Body", "STOP")]);
/// assert_eq!(fields[1], ("Body".to_owned(), "STOP".to_owned()));
/// ```
pub fn form_fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// Decodes an urlencoded body (or query string) into its fields, repeated keys kept in order.
/// Invalid UTF-8 is replaced rather than rejected, so a stray byte cannot crash a webhook.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodes_reserved_characters_and_unicode() {
        let mut form = Form::new();
        form.push("Body", "Tom & Jerry = 100% 😀 +x");
        let encoded = form.encode();
        assert_eq!(encoded, "Body=Tom+%26+Jerry+%3D+100%25+%F0%9F%98%80+%2Bx");
        assert_eq!(parse_form(encoded.as_bytes()), form.fields());
    }

    #[test]
    fn optional_and_boolean_fields() {
        let mut form = Form::new();
        form.push_opt("A", None::<String>)
            .push_opt("B", Some("b"))
            .push_bool("C", false);
        assert_eq!(form.encode(), "B=b&C=false");
    }

    proptest! {
        #[test]
        fn round_trips_any_fields(fields in proptest::collection::vec(("[A-Za-z]{1,8}", any::<String>()), 0..6)) {
            let mut form = Form::new();
            for (k, v) in &fields {
                form.push(k, v.clone());
            }
            prop_assert_eq!(parse_form(form.encode().as_bytes()), fields);
        }
    }
}
