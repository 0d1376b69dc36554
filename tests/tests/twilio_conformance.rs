//! Every request the provider builds, captured by a local stand-in, checked against Twilio's
//! OpenAPI description: path and method, path parameters, form or query parameter names,
//! types, formats, enums, patterns, required and conditional fields, auth scheme.

mod twilio_common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::Value;
use sms_core::{OutboundSms, PhoneNumber, Provider, Timestamp};
use sms_twilio::{SendOptions, TwilioBuilder, TwilioProvider};
use twilio_common::*;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Resolves `{"$ref": "#/components/schemas/x"}`.
fn resolve(schema: &Value) -> &Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.rsplit('/').next().expect("a ref has a name");
            &spec()["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// Checks one value against a parameter schema; returns the problem, if any.
fn check_value(name: &str, value: &str, schema: &Value, description: &str) -> Result<(), String> {
    let schema = resolve(schema);
    let fail = |why: &str| Err(format!("{name}={value:?}: {why}"));
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.iter().any(|a| a.as_str() == Some(value))
    {
        return fail(&format!("not in enum {allowed:?}"));
    }
    match schema["type"].as_str() {
        Some("boolean") if value != "true" && value != "false" => {
            return fail("not a lower-case boolean");
        }
        Some("integer") => {
            let Ok(n) = value.parse::<i64>() else {
                return fail("not an integer");
            };
            if schema["minimum"].as_i64().is_some_and(|min| n < min)
                || schema["maximum"].as_i64().is_some_and(|max| n > max)
            {
                return fail("out of range");
            }
        }
        Some("number") if value.parse::<f64>().is_err() => return fail("not a number"),
        _ => {}
    }
    let len = value.chars().count() as u64;
    if schema["minLength"].as_u64().is_some_and(|min| len < min)
        || schema["maxLength"].as_u64().is_some_and(|max| len > max)
    {
        return fail("length out of bounds");
    }
    if let Some(pattern) = schema["pattern"].as_str()
        && !regex::Regex::new(pattern)
            .expect("spec patterns compile")
            .is_match(value)
    {
        return fail(&format!("does not match {pattern}"));
    }
    match schema["format"].as_str() {
        Some("phone-number")
            if !regex::Regex::new(r"^\+[1-9][0-9]{1,14}$")
                .expect("valid")
                .is_match(value) =>
        {
            fail("not an E.164 number")
        }
        Some("uri") if !(value.starts_with("https://") || value.starts_with("http://")) => {
            fail("not a URI")
        }
        Some("date-time") => {
            // The list filters document `YYYY-MM-DD` in their description although the schema
            // says date-time; accept exactly that documented form, else require RFC 3339.
            let date_only = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}$")
                .expect("valid")
                .is_match(value);
            if Timestamp::parse(value).is_some()
                || (date_only && description.contains("YYYY-MM-DD"))
            {
                Ok(())
            } else {
                fail("not a date-time")
            }
        }
        _ => Ok(()),
    }
}

/// `messaging_service_sid` → `MessagingServiceSid`, as the conditional groups name fields.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// Finds the spec path whose template matches `path`, with its path parameters.
fn match_path(path: &str) -> (&'static str, HashMap<String, String>) {
    let paths = spec()["paths"].as_object().expect("paths");
    let mut found = Vec::new();
    for template in paths.keys() {
        let t: Vec<&str> = template.split('/').collect();
        let p: Vec<&str> = path.split('/').collect();
        if t.len() != p.len() {
            continue;
        }
        let mut params = HashMap::new();
        let matches = t.iter().zip(&p).all(|(t, p)| {
            if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                params.insert(name.to_owned(), (*p).to_owned());
                true
            } else {
                t == p
            }
        });
        if matches {
            found.push((template.as_str(), params));
        }
    }
    assert_eq!(found.len(), 1, "exactly one spec path matches {path}");
    found.pop().expect("one")
}

/// Checks one captured request; returns the operation id.
fn check_request(request: &wiremock::Request) -> String {
    let (template, path_params) = match_path(request.url.path());
    let op = &spec()["paths"][template][request.method.as_str().to_ascii_lowercase()];
    assert!(
        op.is_object(),
        "{} {template} is in the spec",
        request.method
    );
    let id = op["operationId"].as_str().expect("operationId").to_owned();
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let declared = |location: &str| -> HashMap<String, Value> {
        params
            .iter()
            .filter(|p| p["in"] == location)
            .map(|p| (p["name"].as_str().expect("name").to_owned(), p.clone()))
            .collect()
    };
    for (name, p) in declared("path") {
        let value = path_params
            .get(&name)
            .unwrap_or_else(|| panic!("{id}: path parameter {name}"));
        check_value(&name, value, &p["schema"], "").unwrap_or_else(|e| panic!("{id}: {e}"));
    }
    // Security: HTTP Basic, as the spec's accountSid_authToken scheme says.
    let scheme = &spec()["components"]["securitySchemes"]["accountSid_authToken"];
    assert_eq!(
        (scheme["type"].as_str(), scheme["scheme"].as_str()),
        (Some("http"), Some("basic"))
    );
    let auth = request
        .headers
        .get("authorization")
        .expect("credentials sent");
    assert!(
        auth.to_str().expect("ascii").starts_with("Basic "),
        "{id}: basic auth"
    );

    let query: Vec<(String, String)> = request
        .url
        .query_pairs()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let query_params = declared("query");
    for (name, value) in &query {
        let p = query_params
            .get(name)
            .unwrap_or_else(|| panic!("{id}: query parameter {name} is not in the spec"));
        check_value(
            name,
            value,
            &p["schema"],
            p["description"].as_str().unwrap_or(""),
        )
        .unwrap_or_else(|e| panic!("{id}: {e}"));
    }
    for (name, p) in &query_params {
        if p["required"] == true {
            assert!(
                query.iter().any(|(k, _)| k == name),
                "{id}: required {name}"
            );
        }
    }

    if request.method.as_str() == "POST" {
        let content_type = request
            .headers
            .get("content-type")
            .expect("content type")
            .to_str()
            .expect("ascii");
        let schema = &op["requestBody"]["content"][content_type]["schema"];
        assert!(schema.is_object(), "{id}: the spec accepts {content_type}");
        let form = sms_twilio::parse_form(&request.body);
        let properties = schema["properties"].as_object().expect("properties");
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for (name, value) in &form {
            let property = properties
                .get(name)
                .unwrap_or_else(|| panic!("{id}: {name} is not a CreateMessage field"));
            *counts.entry(name).or_default() += 1;
            let property = resolve(property);
            let (item, is_array) = match property["type"].as_str() {
                Some("array") => (&property["items"], true),
                _ => (property, false),
            };
            if !is_array {
                assert_eq!(
                    counts[name.as_str()],
                    1,
                    "{id}: {name} repeated but not an array"
                );
            }
            check_value(name, value, item, "").unwrap_or_else(|e| panic!("{id}: {e}"));
        }
        for required in schema["required"].as_array().into_iter().flatten() {
            let required = required.as_str().expect("name");
            assert!(counts.contains_key(required), "{id}: required {required}");
        }
        for group in op["x-twilio"]["conditional"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let names: Vec<String> = group
                .as_array()
                .expect("group")
                .iter()
                .map(|n| pascal(n.as_str().expect("name")))
                .collect();
            assert!(
                names.iter().any(|n| counts.contains_key(n.as_str())),
                "{id}: one of {names:?} required"
            );
        }
        // Never send the obsolete MaxPrice.
        assert!(!counts.contains_key("MaxPrice"));
    }
    id
}

fn configurations(base: &str) -> Vec<TwilioBuilder> {
    vec![
        builder(base),
        TwilioProvider::builder(ACCOUNT)
            .api_key("SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", TOKEN)
            .messaging_service_sid(SERVICE)
            .status_callback("https://example.com/twilio/status?tenant=a%20b")
            .validity_period(Duration::from_secs(36_000))
            .smart_encoded(true)
            .base_url(base),
        builder(base)
            .messaging_service_sid(SERVICE)
            .validity_period(Duration::from_secs(1))
            .smart_encoded(false),
    ]
}

#[tokio::test]
async fn every_request_the_provider_builds_conforms_to_the_openapi_description() {
    let server = MockServer::start().await;
    let list_empty = example(
        "/2010-04-01/Accounts/{AccountSid}/Messages.json",
        "get",
        "200",
        "readEmptySentdateGreater",
    );
    let balance = example(
        "/2010-04-01/Accounts/{AccountSid}/Balance.json",
        "get",
        "200",
        "fetch",
    );
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201).set_body_raw(create_example("create"), "application/json"),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::path(BALANCE_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_raw(balance, "application/json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::path(MESSAGES_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_raw(list_empty, "application/json"))
        .mount(&server)
        .await;

    let to = PhoneNumber::from_e164("+15005550006").expect("valid");
    let later = Timestamp::from_unix_ms(Timestamp::now().unix_ms() + 24 * 3_600_000);
    for config in configurations(&server.uri()) {
        let provider = config.build().expect("valid configuration");
        provider
            .send(&OutboundSms::new(
                to,
                "Class moved to Room 4 & starts 9am 👍",
            ))
            .await
            .expect("sent");
        let options = SendOptions {
            send_at: Some(later),
            status_callback: Some("https://example.com/per-send".into()),
        };
        // Scheduling is refused without a Messaging Service; every request made is checked.
        let _ = provider
            .send_with(&OutboundSms::new(to, "Later"), &options)
            .await;
        provider.balance().await.expect("balance");
        provider
            .lookup_sent(to, Timestamp::now())
            .await
            .expect("list");
    }

    let requests = server.received_requests().await.expect("recorded");
    let operations: BTreeSet<String> = requests.iter().map(check_request).collect();
    assert_eq!(
        operations.into_iter().collect::<Vec<_>>(),
        ["CreateMessage", "FetchBalance", "ListMessage"]
    );
    let scheduled = requests
        .iter()
        .filter(|r| {
            sms_twilio::parse_form(&r.body)
                .iter()
                .any(|(k, _)| k == "SendAt")
        })
        .count();
    assert_eq!(
        scheduled, 2,
        "SendAt only went out with a Messaging Service"
    );
}

#[test]
fn the_checker_itself_catches_wrong_requests() {
    let body = &operation("/2010-04-01/Accounts/{AccountSid}/Messages.json", "post")["requestBody"]
        ["content"]["application/x-www-form-urlencoded"]["schema"]["properties"];
    assert!(check_value("SmartEncoded", "True", &body["SmartEncoded"], "").is_err());
    assert!(check_value("ValidityPeriod", "ten", &body["ValidityPeriod"], "").is_err());
    assert!(
        check_value(
            "MessagingServiceSid",
            "MG123",
            &body["MessagingServiceSid"],
            ""
        )
        .is_err()
    );
    assert!(check_value("ScheduleType", "later", &body["ScheduleType"], "").is_err());
    assert!(check_value("SendAt", "tomorrow", &body["SendAt"], "").is_err());
    assert!(check_value("To", "555-1234", &body["To"], "").is_err());
    assert!(check_value("ScheduleType", "fixed", &body["ScheduleType"], "").is_ok());
    assert_eq!(pascal("messaging_service_sid"), "MessagingServiceSid");
}
