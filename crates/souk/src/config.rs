//! Configuration. Each setting is taken from the first place that has it: the command-line
//! flag, then the `SOUK_*` environment variable (clap reads both), then the `--config`
//! TOML file, then the default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use souk_store::DatabaseUrl;

/// Settings as they may appear in `souk.toml`. Unknown keys are an error, so a typo is
/// caught at start-up rather than silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub secure_cookies: Option<bool>,
    pub log_format: Option<String>,
    /// 64 hex digits: the key that seals secrets waiting in the database.
    pub secret_key: Option<String>,
    /// Private hosts deliveries to sellers may reach.
    pub outbound_allow: Option<Vec<String>>,
    /// Where emails go (`smtp://user:pass@host:587?tls=required`, `smtps://…`).
    pub smtp_url: Option<String>,
    /// The sender of every email (`Souk <noreply@example.com>`).
    pub mail_from: Option<String>,
    /// The SMS gateway's URL, with `{to}` and `{text}` placeholders.
    pub sms_url: Option<String>,
    /// The SMS gateway's `Authorization` header value.
    pub sms_auth: Option<String>,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }
}

/// Values given on the command line or in the environment (already merged by clap).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub secure_cookies: Option<bool>,
    pub log_format: Option<String>,
    pub secret_key: Option<String>,
    pub outbound_allow: Option<Vec<String>>,
    pub smtp_url: Option<String>,
    pub mail_from: Option<String>,
    pub sms_url: Option<String>,
    pub sms_auth: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: DatabaseUrl,
    pub secure_cookies: bool,
    pub log_format: LogFormat,
    /// 32 bytes, when configured (see `souk_server::ServerConfig::secret_key`).
    pub secret_key: Option<Vec<u8>>,
    pub outbound_allow: Vec<String>,
    pub smtp_url: Option<String>,
    pub mail_from: Option<String>,
    pub sms_url: Option<String>,
    pub sms_auth: Option<String>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "souk-data";

impl Config {
    pub fn resolve(o: Overrides) -> anyhow::Result<Self> {
        let file = match &o.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let listen_raw = o.listen.or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_raw.parse().with_context(|| format!("listen address {listen_raw:?} is not host:port"))?;
        let data_dir = o.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = match o.database_url.or(file.database_url) {
            Some(url) => DatabaseUrl::parse(&url)?,
            None => DatabaseUrl::sqlite_file(&data_dir.join("souk.db")),
        };
        let log_format = match o.log_format.or(file.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => anyhow::bail!("log format {other:?} is not text or json"),
        };
        let secret_key = match o.secret_key.or(file.secret_key) {
            None => None,
            Some(hex_key) => match hex::decode(hex_key.trim()) {
                Ok(k) if k.len() == 32 => Some(k),
                _ => anyhow::bail!("the secret key must be 64 hex digits (32 bytes); generate one with `openssl rand -hex 32`"),
            },
        };
        let outbound_allow = o
            .outbound_allow
            .or(file.outbound_allow)
            .unwrap_or_default()
            .into_iter()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .collect();
        let nonempty = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let smtp_url = nonempty(o.smtp_url.or(file.smtp_url));
        if let Some(u) = &smtp_url
            && !u.starts_with("smtp://")
            && !u.starts_with("smtps://")
        {
            anyhow::bail!("the SMTP URL must start with smtp:// or smtps://");
        }
        let sms_url = nonempty(o.sms_url.or(file.sms_url));
        if let Some(u) = &sms_url
            && !u.starts_with("http://")
            && !u.starts_with("https://")
        {
            anyhow::bail!("the SMS gateway URL must be http(s)");
        }
        Ok(Self {
            smtp_url,
            mail_from: nonempty(o.mail_from.or(file.mail_from)),
            sms_url,
            sms_auth: nonempty(o.sms_auth.or(file.sms_auth)),
            outbound_allow,
            secret_key,
            listen,
            data_dir,
            database_url,
            secure_cookies: o.secure_cookies.or(file.secure_cookies).unwrap_or(false),
            log_format,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_nothing_is_given() {
        let c = Config::resolve(Overrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.data_dir, PathBuf::from("souk-data"));
        assert_eq!(c.database_url.expose(), "sqlite://souk-data/souk.db");
        assert_eq!(c.secret_key, None);
    }

    #[test]
    fn mail_and_sms_settings_are_checked() {
        let c = Config::resolve(Overrides {
            smtp_url: Some("smtp://mail.example:587?tls=required".into()),
            sms_url: Some(" ".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((c.smtp_url.as_deref(), c.sms_url), (Some("smtp://mail.example:587?tls=required"), None));
        assert!(Config::resolve(Overrides { smtp_url: Some("mail.example:25".into()), ..Default::default() }).is_err());
        assert!(Config::resolve(Overrides { sms_url: Some("ftp://sms".into()), ..Default::default() }).is_err());
    }

    #[test]
    fn a_secret_key_is_32_bytes_of_hex() {
        let key = "ab".repeat(32);
        let c = Config::resolve(Overrides { secret_key: Some(key), ..Default::default() }).unwrap();
        assert_eq!(c.secret_key, Some(vec![0xab; 32]));
        let short = Config::resolve(Overrides { secret_key: Some("abcd".into()), ..Default::default() });
        assert!(short.unwrap_err().to_string().contains("64 hex digits"));
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("souk.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/souk\"\nsecure_cookies = true\n").unwrap();
        let from_file = Config::resolve(Overrides { config: Some(path.clone()), ..Default::default() }).unwrap();
        assert_eq!(from_file.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(from_file.database_url.expose(), "sqlite:///srv/souk/souk.db");
        assert!(from_file.secure_cookies);
        let flagged = Config::resolve(Overrides {
            config: Some(path),
            listen: Some("0.0.0.0:7000".into()),
            database_url: Some("postgres://db/souk".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(flagged.listen.to_string(), "0.0.0.0:7000");
        assert_eq!(flagged.database_url.expose(), "postgres://db/souk");
    }

    #[test]
    fn bad_values_are_reported() {
        assert!(Config::resolve(Overrides { listen: Some("nowhere".into()), ..Default::default() }).is_err());
        assert!(Config::resolve(Overrides { database_url: Some("mysql://x".into()), ..Default::default() }).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("souk.toml");
        std::fs::write(&path, "lisen = \"typo\"\n").unwrap();
        assert!(Config::resolve(Overrides { config: Some(path), ..Default::default() }).is_err());
    }
}
