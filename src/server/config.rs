//! Runtime configuration: Leptos.toml, then environment variables on top.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use leptos::config::LeptosOptions;
use serde::Deserialize;

/// Herald's own settings (the `[herald]` table of Leptos.toml).
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub demo_data: bool,
    pub session_hours: i64,
    /// A session unused this long ends, whatever its absolute expiry.
    pub session_idle_minutes: i64,
    pub secure_cookies: bool,
    /// The largest CSV file an import accepts, in bytes.
    pub import_max_bytes: u64,
    /// Whether this process sends broadcasts (every instance may; they share the work).
    pub dispatcher: bool,
    /// A schedule found later than this, in minutes (Herald was down), is marked missed.
    pub dispatch_grace_minutes: i64,
    /// How long a claimed delivery stays with its worker; after a crash, that long until
    /// another takes it.
    pub dispatch_lease_seconds: i64,
    /// How long a delivery whose request may have reached the provider before a crash waits
    /// for a report naming it before it is sent again.
    pub dispatch_reconcile_seconds: i64,
    /// On SIGTERM or Ctrl-C, how long the requests in flight may take to finish (and be
    /// recorded) before Herald exits anyway.
    pub shutdown_grace_seconds: i64,
    /// "Send now" waits this long before the first message leaves, so it can be undone.
    pub send_now_undo_seconds: i64,
    /// How long after a broadcast message a customer's unquoted message may count as the
    /// reply to it (the first message they send on that channel after it).
    pub reply_window_hours: i64,
    /// Where customers and providers reach this Herald (links in messages), e.g.
    /// `https://herald.example.com`; `None` means `http://<site-addr>`.
    pub public_url: Option<String>,
    /// Sign-in attempts per account within `sign_in_window_seconds` (three times as many per
    /// client address).
    pub sign_in_attempts: u32,
    pub sign_in_window_seconds: i64,
    /// Networks of the reverse proxies in front of Herald: from their connections the
    /// client's address is taken from `X-Forwarded-For` (empty: always the connection's).
    pub trusted_proxies: crate::server::accounts::address::TrustedProxies,
    /// `trust-proxy = true` was set (the old flag, read as the local networks).
    pub trust_proxy_flag: bool,
    /// Channels may send to loopback, private and link-local addresses (local fakes, tests).
    pub allow_private_endpoints: bool,
    /// Files go to this S3-compatible bucket instead of the data folder (several instances).
    pub s3: Option<crate::server::files::S3Settings>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct HeraldTable {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    demo_data: Option<bool>,
    session_hours: Option<i64>,
    session_idle_minutes: Option<i64>,
    secure_cookies: Option<bool>,
    import_max_mb: Option<u64>,
    dispatcher: Option<bool>,
    dispatch_grace_minutes: Option<i64>,
    dispatch_lease_seconds: Option<i64>,
    dispatch_reconcile_seconds: Option<i64>,
    shutdown_grace_seconds: Option<i64>,
    send_now_undo_seconds: Option<i64>,
    reply_window_hours: Option<i64>,
    public_url: Option<String>,
    sign_in_attempts: Option<i64>,
    sign_in_window_seconds: Option<i64>,
    trust_proxy: Option<bool>,
    trusted_proxies: Option<Vec<String>>,
    allow_private_endpoints: Option<bool>,
    s3_bucket: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
struct FileShape {
    #[serde(default)]
    herald: HeraldTable,
}

/// Where the configuration file is: `HERALD_CONFIG`, else `Leptos.toml` in the working folder.
pub fn config_path() -> PathBuf {
    std::env::var_os("HERALD_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("Leptos.toml"))
}

/// Reads the Leptos options and Herald's settings from `path`, with environment overrides.
pub fn load(path: &Path) -> Result<(LeptosOptions, Config)> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the configuration file {} (run Herald from the project folder, or set HERALD_CONFIG)",
            path.display()
        )
    })?;
    let shape: FileShape = toml::from_str(&text)
        .with_context(|| format!("the configuration file {} is not valid", path.display()))?;
    let conf = leptos::config::get_configuration(Some(&path.to_string_lossy()))
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| {
            format!(
                "the [package.metadata.leptos] table in {} is not valid",
                path.display()
            )
        })?;
    let config = resolve(shape.herald, |k| std::env::var(k).ok())?;
    Ok((conf.leptos_options, config))
}

/// Applies defaults and environment overrides (`env` looks a variable up; injectable for tests).
fn resolve(file: HeraldTable, env: impl Fn(&str) -> Option<String>) -> Result<Config> {
    let s3 = s3_settings(&file, &env);
    let data_dir = env("HERALD_DATA_DIR")
        .map(PathBuf::from)
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from("data"));
    let database_url = env("DATABASE_URL")
        .or(file.database_url)
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("herald.db").to_string_lossy()));
    let flag = |var: &str, from_file: Option<bool>, default: bool| match env(var) {
        Some(v) => parse_bool(var, &v),
        None => Ok(from_file.unwrap_or(default)),
    };
    let demo_data = flag("HERALD_DEMO_DATA", file.demo_data, false)?;
    let secure_cookies = flag("HERALD_SECURE_COOKIES", file.secure_cookies, false)?;
    let dispatcher = flag("HERALD_DISPATCHER", file.dispatcher, true)?;
    let trust_proxy_flag = flag("HERALD_TRUST_PROXY", file.trust_proxy, false)?;
    let trusted_proxies = trusted_proxies(
        env("HERALD_TRUSTED_PROXIES").map(|v| v.split(',').map(str::to_string).collect()),
        file.trusted_proxies,
        trust_proxy_flag,
    )?;
    let allow_private_endpoints = flag(
        "HERALD_ALLOW_PRIVATE_ENDPOINTS",
        file.allow_private_endpoints,
        false,
    )?;
    let number = |var: &str, key: &str, from_file: Option<i64>, default: i64, range| {
        whole_number(env(var), var, key, from_file.unwrap_or(default), range)
    };
    let session_hours = number(
        "HERALD_SESSION_HOURS",
        "session-hours",
        file.session_hours,
        12,
        1..=24 * 90,
    )?;
    let session_idle_minutes = number(
        "HERALD_SESSION_IDLE_MINUTES",
        "session-idle-minutes",
        file.session_idle_minutes,
        120,
        5..=24 * 90 * 60,
    )?;
    let import_max_mb = number(
        "HERALD_IMPORT_MAX_MB",
        "import-max-mb",
        file.import_max_mb.map(|m| m as i64),
        256,
        1..=100 * 1024,
    )? as u64;
    let dispatch_grace_minutes = number(
        "HERALD_DISPATCH_GRACE_MINUTES",
        "dispatch-grace-minutes",
        file.dispatch_grace_minutes,
        15,
        0..=7 * 24 * 60,
    )?;
    let dispatch_lease_seconds = number(
        "HERALD_DISPATCH_LEASE_SECONDS",
        "dispatch-lease-seconds",
        file.dispatch_lease_seconds,
        60,
        1..=3600,
    )?;
    let dispatch_reconcile_seconds = number(
        "HERALD_DISPATCH_RECONCILE_SECONDS",
        "dispatch-reconcile-seconds",
        file.dispatch_reconcile_seconds,
        60,
        1..=24 * 3600,
    )?;
    let shutdown_grace_seconds = number(
        "HERALD_SHUTDOWN_GRACE_SECONDS",
        "shutdown-grace-seconds",
        file.shutdown_grace_seconds,
        30,
        0..=3600,
    )?;
    let send_now_undo_seconds = number(
        "HERALD_SEND_NOW_UNDO_SECONDS",
        "send-now-undo-seconds",
        file.send_now_undo_seconds,
        30,
        0..=600,
    )?;
    let reply_window_hours = number(
        "HERALD_REPLY_WINDOW_HOURS",
        "reply-window-hours",
        file.reply_window_hours,
        72,
        1..=30 * 24,
    )?;
    let sign_in_attempts = number(
        "HERALD_SIGN_IN_ATTEMPTS",
        "sign-in-attempts",
        file.sign_in_attempts,
        10,
        1..=100_000,
    )? as u32;
    let sign_in_window_seconds = number(
        "HERALD_SIGN_IN_WINDOW_SECONDS",
        "sign-in-window-seconds",
        file.sign_in_window_seconds,
        60,
        1..=24 * 3600,
    )?;
    let public_url = public_url(env("HERALD_PUBLIC_URL").or(file.public_url))?;
    Ok(Config {
        s3,
        public_url,
        sign_in_attempts,
        sign_in_window_seconds,
        trusted_proxies,
        trust_proxy_flag,
        allow_private_endpoints,
        dispatch_lease_seconds,
        dispatch_reconcile_seconds,
        shutdown_grace_seconds,
        send_now_undo_seconds,
        reply_window_hours,
        dispatcher,
        dispatch_grace_minutes,
        import_max_bytes: import_max_mb * 1024 * 1024,
        data_dir,
        database_url,
        demo_data,
        session_hours,
        session_idle_minutes,
        secure_cookies,
    })
}

/// The bucket files go to, when `HERALD_S3_BUCKET` or `s3-bucket` names one (with the
/// endpoint, region and key prefix beside it).
fn s3_settings(
    file: &HeraldTable,
    env: &impl Fn(&str) -> Option<String>,
) -> Option<crate::server::files::S3Settings> {
    let pick = |var: &str, from_file: &Option<String>| {
        env(var)
            .or_else(|| from_file.clone())
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let bucket = pick("HERALD_S3_BUCKET", &file.s3_bucket);
    (!bucket.is_empty()).then(|| crate::server::files::S3Settings {
        bucket,
        endpoint: pick("HERALD_S3_ENDPOINT", &file.s3_endpoint),
        region: pick("HERALD_S3_REGION", &file.s3_region),
        prefix: pick("HERALD_S3_PREFIX", &file.s3_prefix),
        // Secrets come from the environment only, never the configuration file.
        access_key_id: env("HERALD_S3_ACCESS_KEY_ID").unwrap_or_default(),
        secret_access_key: env("HERALD_S3_SECRET_ACCESS_KEY").unwrap_or_default(),
    })
}

impl Config {
    /// The configured database, sealing channel settings with the operator's key
    /// (`HERALD_SECRET_KEY`, else `secret.key` in the data folder, made on first start).
    pub async fn open_db(&self) -> Result<crate::server::db::Db> {
        let sealer = crate::server::db::secrets::Sealer::load(&self.data_dir)?;
        let db = crate::server::db::Db::connect(&self.database_url).await?;
        let sealer = if sealer.was_just_created() {
            let sealed = db.count_sealed().await?;
            if sealed > 0 {
                // A new key opens none of them: every channel would fail, and instances with
                // different keys would each fail the other's. Nothing is kept of the new key.
                let key = self.data_dir.join(crate::server::db::secrets::KEY_FILE);
                let _ = std::fs::remove_file(&key);
                bail!(
                    "the database holds {sealed} sealed settings but no key was found to open them, so Herald made a new one ({}) and removed it again. Restore the key they were sealed with: the file {} from the instance that saved them, or the same {} on every instance",
                    key.display(),
                    key.display(),
                    crate::server::db::secrets::KEY_VAR
                );
            }
            sealer.settled()
        } else {
            sealer
        };
        Ok(db
            .with_sealer(sealer)
            .with_reply_window(self.reply_window_hours))
    }

    /// Herald is served over HTTPS (`secure-cookies`, or an https `public-url`): the session
    /// cookie is `Secure` and `__Host-`-prefixed, and pages send HSTS.
    pub fn secure(&self) -> bool {
        self.secure_cookies
            || self
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
    }

    /// The client's address of a request, through the trusted proxies.
    pub fn client_address(&self, parts: &axum::http::request::Parts) -> Option<std::net::IpAddr> {
        self.trusted_proxies.client_of(parts)
    }

    /// What the operator should hear at start about how clients' addresses are read.
    pub fn proxy_warnings(&self) -> Vec<String> {
        let mut said = Vec::new();
        if self.trust_proxy_flag {
            said.push(format!(
                "trust-proxy is deprecated: name your proxies' networks in trusted-proxies instead (read now as {})",
                crate::server::accounts::address::LOCAL_NETWORKS.join(", ")
            ));
        }
        if self.secure() && self.trusted_proxies.is_empty() {
            said.push("public-url is https but no trusted-proxies are set: every client behind your TLS proxy shares the proxy's address, so one person's failed sign-ins count against the whole team. Set trusted-proxies to the proxy's network.".into());
        }
        said
    }

    /// How long a session lasts without use.
    pub fn session_idle(&self) -> chrono::Duration {
        chrono::Duration::minutes(self.session_idle_minutes)
    }
}

/// The trusted proxies as set (the environment's list, else the file's); the old flag
/// `trust-proxy = true` alone means the local networks.
fn trusted_proxies(
    from_env: Option<Vec<String>>,
    from_file: Option<Vec<String>>,
    flag: bool,
) -> Result<crate::server::accounts::address::TrustedProxies> {
    use crate::server::accounts::address::{LOCAL_NETWORKS, TrustedProxies};
    match from_env.or(from_file) {
        Some(list) => TrustedProxies::parse(&list),
        None if flag => TrustedProxies::parse(&LOCAL_NETWORKS),
        None => Ok(TrustedProxies::default()),
    }
}

/// The public URL as set (trimmed, without a trailing slash), checked to be http(s).
fn public_url(set: Option<String>) -> Result<Option<String>> {
    let url = set
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty());
    if let Some(u) = &url
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        bail!("public-url must start with https:// or http://, not {u:?}");
    }
    Ok(url)
}

/// A whole-number setting: the environment's (`var`) if set, else `value` (the file's or the
/// default), within `range` (named by its file `key` when outside).
fn whole_number(
    from_env: Option<String>,
    var: &str,
    key: &str,
    value: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64> {
    let n = match from_env {
        Some(v) => v
            .trim()
            .parse()
            .with_context(|| format!("{var} must be a whole number, not {v:?}"))?,
        None => value,
    };
    if !range.contains(&n) {
        bail!(
            "{key} must be between {} and {}, not {n}",
            range.start(),
            range.end()
        );
    }
    Ok(n)
}

fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => bail!("{name} must be true or false, not {v:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn trusted_proxies_are_networks_and_an_https_site_without_them_is_warned_about() {
        let https = [("HERALD_PUBLIC_URL", "https://herald.example.com")];
        let c = resolve(HeraldTable::default(), env_of(&https)).unwrap();
        assert!(c.trusted_proxies.is_empty());
        let said = c.proxy_warnings().join(" ");
        assert!(said.contains("no trusted-proxies"), "{said}");
        let c = resolve(
            HeraldTable::default(),
            env_of(&[
                https[0],
                ("HERALD_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
            ]),
        )
        .unwrap();
        assert!(c.trusted_proxies.trusts("10.2.3.4".parse().unwrap()));
        assert!(!c.trusted_proxies.trusts("203.0.113.1".parse().unwrap()));
        assert!(c.proxy_warnings().is_empty());
        // The old flag: the local networks, never the internet, with a warning.
        let old = HeraldTable {
            trust_proxy: Some(true),
            ..HeraldTable::default()
        };
        let c = resolve(old, env_of(&[])).unwrap();
        assert!(c.trusted_proxies.trusts("192.168.1.1".parse().unwrap()));
        assert!(!c.trusted_proxies.trusts("8.8.8.8".parse().unwrap()));
        assert!(c.proxy_warnings().join(" ").contains("deprecated"));
        let bad = resolve(
            HeraldTable::default(),
            env_of(&[("HERALD_TRUSTED_PROXIES", "everyone")]),
        );
        assert!(bad.unwrap_err().to_string().contains("trusted-proxies"));
    }

    #[test]
    fn defaults_put_sqlite_in_the_data_folder() {
        let c = resolve(HeraldTable::default(), env_of(&[])).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert_eq!(c.database_url, "sqlite://data/herald.db");
        assert!(!c.demo_data, "demo data only when asked for");
    }

    #[test]
    fn environment_overrides_the_file() {
        let file = HeraldTable {
            data_dir: Some("from-file".into()),
            database_url: Some("".into()),
            demo_data: Some(true),
            session_hours: Some(5),
            secure_cookies: Some(false),
            import_max_mb: Some(10),
            dispatcher: Some(true),
            dispatch_grace_minutes: Some(30),
            dispatch_lease_seconds: None,
            dispatch_reconcile_seconds: None,
            public_url: Some("https://herald.example.com/".into()),
            ..HeraldTable::default()
        };
        let c = resolve(
            file,
            env_of(&[
                ("HERALD_DATA_DIR", "/tmp/x"),
                ("HERALD_DEMO_DATA", "no"),
                ("HERALD_SESSION_HOURS", "2"),
                ("HERALD_SECURE_COOKIES", "true"),
                ("HERALD_DISPATCHER", "off"),
            ]),
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.database_url, "sqlite:///tmp/x/herald.db");
        assert!(!c.demo_data);
        assert_eq!(c.session_hours, 2);
        assert!(c.secure_cookies);
        assert_eq!(c.import_max_bytes, 10 * 1024 * 1024);
        assert!(!c.dispatcher);
        assert_eq!(c.dispatch_grace_minutes, 30);
        assert_eq!(c.public_url.as_deref(), Some("https://herald.example.com"));
        let e = resolve(
            HeraldTable::default(),
            env_of(&[("HERALD_PUBLIC_URL", "herald.example.com")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("https://"), "{e}");
        let c = resolve(
            HeraldTable::default(),
            env_of(&[("DATABASE_URL", "postgres://h/db")]),
        )
        .unwrap();
        assert_eq!(c.database_url, "postgres://h/db");
    }

    #[test]
    fn bad_values_are_refused_with_the_variable_named() {
        let e = resolve(
            HeraldTable::default(),
            env_of(&[("HERALD_DEMO_DATA", "maybe")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("HERALD_DEMO_DATA"), "{e}");
        let e = resolve(
            HeraldTable::default(),
            env_of(&[("HERALD_SESSION_HOURS", "0")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("session-hours"), "{e}");
    }

    #[test]
    fn the_shipped_leptos_toml_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Leptos.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let shape: FileShape = toml::from_str(&text).unwrap();
        assert!(shape.herald.data_dir.is_some());
    }
}
