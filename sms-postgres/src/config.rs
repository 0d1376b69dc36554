//! The connection URL: parsed once, the password found the way libpq finds it (the URL, then
//! `PGPASSWORD`, then the password file), and never shown.
//!
//! tokio-postgres reads only the URL; the environment variable and the password file are read
//! here, so a URL written for `psql` works unchanged.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use tokio_postgres::config::{Host, SslMode};

use crate::Error;

/// The default PostgreSQL port, used when the URL names none (also for the password file).
const DEFAULT_PORT: u16 = 5432;

/// A parsed connection URL. Its `Debug` (and [`PgConfig::redacted_url`]) show the password as
/// `***`.
#[derive(Clone)]
pub struct PgConfig {
    pub(crate) pg: tokio_postgres::Config,
    /// Where the password came from, or why there is none: added to a connection error.
    password_source: PasswordSource,
    /// Texts that must never appear in an error: the password as written and as decoded.
    secrets: Secrets,
}

/// Where the password came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PasswordSource {
    Url,
    Environment,
    File(PathBuf),
    /// No password found; the note says where it was looked for.
    None(String),
}

/// The process environment the password is looked up in: a value, so tests give their own.
#[derive(Debug, Clone, Default)]
pub(crate) struct Env {
    pub(crate) pgpassword: Option<String>,
    pub(crate) pgpassfile: Option<PathBuf>,
    pub(crate) home: Option<PathBuf>,
}

impl Env {
    /// `PGPASSWORD`, `PGPASSFILE` and `HOME` of this process.
    pub(crate) fn from_process() -> Env {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        Env {
            pgpassword: var("PGPASSWORD").map(|v| v.to_string_lossy().into_owned()),
            pgpassfile: var("PGPASSFILE").map(PathBuf::from),
            home: var("HOME").map(PathBuf::from),
        }
    }
}

/// Strings to cut out of any text the crate shows.
#[derive(Clone, Default)]
pub(crate) struct Secrets(Vec<String>);

impl Secrets {
    fn add(&mut self, secret: &str) {
        if !secret.is_empty() && !self.0.iter().any(|s| s == secret) {
            self.0.push(secret.to_owned());
            // Longest first, so a secret holding another is cut whole.
            self.0.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` with every secret replaced by `***`.
    pub(crate) fn scrub(&self, text: impl fmt::Display) -> String {
        let mut text = text.to_string();
        for secret in &self.0 {
            text = text.replace(secret.as_str(), "***");
        }
        text
    }
}

impl PgConfig {
    /// Parses `url` (`postgres://user[:password]@host[:port]/db?sslmode=...`) and finds its
    /// password: from the URL, else `PGPASSWORD`, else the password file (`PGPASSFILE`, or
    /// `~/.pgpass`; libpq's format, `*` wildcards and `\:` escapes). Nothing is connected yet.
    pub fn from_url(url: &str) -> Result<PgConfig, Error> {
        PgConfig::from_url_in(url, &Env::from_process())
    }

    pub(crate) fn from_url_in(url: &str, env: &Env) -> Result<PgConfig, Error> {
        let mut secrets = Secrets::default();
        for secret in secrets_in_url(url) {
            secrets.add(&secret);
        }
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Error::Url(format!(
                "'{}' is not a postgres:// URL",
                secrets.scrub(url)
            )));
        }
        let mut pg = tokio_postgres::Config::from_str(url)
            .map_err(|e| Error::Url(secrets.scrub(format!("cannot read the URL: {e}"))))?;
        let user = pg
            .get_user()
            .ok_or_else(|| Error::Url("the URL names no user (postgres://USER@host/db)".into()))?
            .to_owned();
        if pg.get_hosts().is_empty() {
            return Err(Error::Url("the URL names no host".into()));
        }
        let password_source = match pg.get_password() {
            Some(password) => {
                secrets.add(&String::from_utf8_lossy(password));
                PasswordSource::Url
            }
            None => {
                if let Some(password) = &env.pgpassword {
                    secrets.add(password);
                    pg.password(password.as_str());
                    PasswordSource::Environment
                } else {
                    let key = PassKey {
                        host: host_for_passfile(&pg.get_hosts()[0]),
                        port: pg.get_ports().first().copied().unwrap_or(DEFAULT_PORT),
                        database: pg.get_dbname().unwrap_or(&user).to_owned(),
                        user: user.clone(),
                    };
                    match passfile_path(env) {
                        None => PasswordSource::None(
                            "no password: none in the URL, PGPASSWORD unset, no home folder for ~/.pgpass"
                                .into(),
                        ),
                        Some(path) => match read_passfile(&path, &key) {
                            Ok(Some(password)) => {
                                secrets.add(&password);
                                pg.password(password.as_str());
                                PasswordSource::File(path)
                            }
                            Ok(None) => PasswordSource::None(format!(
                                "no password: none in the URL, PGPASSWORD unset, and no line of {} matches {}:{}:{}:{}",
                                path.display(),
                                key.host,
                                key.port,
                                key.database,
                                key.user
                            )),
                            Err(why) => PasswordSource::None(format!(
                                "no password: none in the URL, PGPASSWORD unset, and {why}"
                            )),
                        },
                    }
                }
            }
        };
        if pg.get_connect_timeout().is_none() {
            // A server that does not answer must end in an error, not a wait without end.
            pg.connect_timeout(std::time::Duration::from_secs(10));
        }
        if pg.get_application_name().is_none() {
            pg.application_name("sms-postgres");
        }
        Ok(PgConfig {
            pg,
            password_source,
            secrets,
        })
    }

    /// The URL with the password shown as `***` (and only the parts this crate uses).
    pub fn redacted_url(&self) -> String {
        let pg = &self.pg;
        let mut url = String::from("postgres://");
        if let Some(user) = pg.get_user() {
            url.push_str(&percent_encode(user));
            if pg.get_password().is_some() && self.password_source == PasswordSource::Url {
                url.push_str(":***");
            }
            url.push('@');
        }
        let port = pg.get_ports().first().copied().unwrap_or(DEFAULT_PORT);
        let mut query = Vec::new();
        match pg.get_hosts().first() {
            Some(Host::Tcp(host)) if host.contains(':') => {
                url.push_str(&format!("[{host}]:{port}"))
            }
            Some(Host::Tcp(host)) => url.push_str(&format!("{host}:{port}")),
            Some(Host::Unix(dir)) => query.push(format!("host={}", dir.display())),
            None => {}
        }
        url.push('/');
        if let Some(db) = pg.get_dbname() {
            url.push_str(&percent_encode(db));
        }
        query.push(format!(
            "sslmode={}",
            match pg.get_ssl_mode() {
                SslMode::Disable => "disable",
                SslMode::Require => "require",
                _ => "prefer",
            }
        ));
        url.push('?');
        url.push_str(&query.join("&"));
        url
    }

    /// `text` with the password cut out: every error the crate makes goes through this.
    pub(crate) fn scrub(&self, text: impl fmt::Display) -> String {
        self.secrets.scrub(text)
    }

    /// Why no password was found, when none was: said with an authentication failure.
    pub(crate) fn password_note(&self) -> Option<&str> {
        match &self.password_source {
            PasswordSource::None(note) => Some(note),
            _ => None,
        }
    }

    #[cfg(test)]
    pub(crate) fn password_source(&self) -> &PasswordSource {
        &self.password_source
    }
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.password_source {
            PasswordSource::Url => "url".to_owned(),
            PasswordSource::Environment => "PGPASSWORD".to_owned(),
            PasswordSource::File(path) => path.display().to_string(),
            PasswordSource::None(_) => "none".to_owned(),
        };
        f.debug_struct("PgConfig")
            .field("url", &self.redacted_url())
            .field("password_from", &source)
            .finish()
    }
}

/// Every text in `url` that may be the password: what follows `user:` before the `@`, and a
/// `password=` parameter, each as written and percent-decoded. Read without a parser so that
/// even a URL the parser refuses has its password cut out of the error.
fn secrets_in_url(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Some((_, rest)) = url.split_once("://") {
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@')
            && let Some((_, password)) = authority[..at].split_once(':')
        {
            found.push(password.to_owned());
        }
    }
    if let Some((_, query)) = url.split_once('?') {
        for pair in query.split('&') {
            if let Some(password) = pair.strip_prefix("password=") {
                found.push(password.to_owned());
            }
        }
    }
    let decoded: Vec<String> = found.iter().map(|s| percent_decode(s)).collect();
    found.extend(decoded);
    found.retain(|s| !s.is_empty());
    found
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The password file to read: `PGPASSFILE`, else `~/.pgpass`.
fn passfile_path(env: &Env) -> Option<PathBuf> {
    env.pgpassfile
        .clone()
        .or_else(|| env.home.as_ref().map(|home| home.join(".pgpass")))
}

/// The host as the password file names it: a Unix socket is `localhost`, as in libpq.
fn host_for_passfile(host: &Host) -> String {
    match host {
        Host::Tcp(host) => host.clone(),
        Host::Unix(_) => "localhost".to_owned(),
    }
}

/// What a password file line is matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PassKey {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) database: String,
    pub(crate) user: String,
}

/// The password of the first line of the file at `path` matching `key`; `Ok(None)` when the
/// file does not exist or no line matches; `Err` (why, for the error text) when the file cannot
/// be read or others may read it (libpq ignores such a file too).
fn read_passfile(path: &Path, key: &PassKey) -> Result<Option<String>, String> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{} cannot be read: {e}", path.display())),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o077 != 0 {
            return Err(format!(
                "{} was ignored: others may read it (chmod 0600 it, as libpq asks)",
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
    Ok(find_password(&text, key))
}

/// The password of the first line of a password file (libpq's format:
/// `hostname:port:database:username:password`, a bare `*` matching anything in the first four
/// fields, `\:` and `\\` escaping, `#` starting a comment line) that matches `key`.
pub(crate) fn find_password(text: &str, key: &PassKey) -> Option<String> {
    let port = key.port.to_string();
    let wanted = [key.host.as_str(), port.as_str(), &key.database, &key.user];
    text.lines()
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .find_map(|line| {
            let fields = split_passfile_line(line);
            if fields.len() < 5 {
                return None;
            }
            let matches = fields[..4]
                .iter()
                .zip(wanted)
                .all(|(field, value)| field.wildcard || field.text == value);
            matches.then(|| fields[4].text.clone())
        })
}

/// One field of a password file line.
struct PassField {
    /// The text, escapes removed.
    text: String,
    /// Written as a bare `*` (an escaped `\*` is a literal star).
    wildcard: bool,
}

/// A line's fields, split at each colon not escaped by a backslash (as libpq does, the
/// password ends at one too).
fn split_passfile_line(line: &str) -> Vec<PassField> {
    let mut fields = Vec::with_capacity(5);
    let mut field = PassField {
        text: String::new(),
        wildcard: false,
    };
    let mut raw_len = 0;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                // A trailing backslash is kept as it is.
                field.text.push(chars.next().unwrap_or('\\'));
                raw_len += 2;
            }
            ':' => {
                fields.push(std::mem::replace(
                    &mut field,
                    PassField {
                        text: String::new(),
                        wildcard: false,
                    },
                ));
                raw_len = 0;
            }
            _ => {
                field.text.push(c);
                raw_len += 1;
                field.wildcard = raw_len == 1 && c == '*';
                continue;
            }
        }
        field.wildcard = false;
    }
    fields.push(field);
    fields
}
