//! Typed configuration. Every setting has a default that works; values come from the TOML file
//! (`--config FILE`, `ALMANAC_CONFIG`, or `almanac.toml` in the working directory if present),
//! then `ALMANAC_*` environment variables (`ALMANAC_DATABASE_URL`, `ALMANAC_LIMITS__MAX_LIMIT`,
//! sections split by `__`), then command-line flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::auth::{AuthMode, MemberScope, Policy};
use crate::db::DbOptions;
use crate::ingest::IngestLimits;
use crate::store::audit;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub bind: String,
    /// `sqlite://PATH` (the default, a file in the working directory) or `postgres://…`.
    pub database_url: String,
    /// How callers are identified: `token` (the default) or `headers`.
    pub auth: AuthMode,
    /// `headers` mode trusts whoever can reach the port, so it is refused on an address other
    /// than loopback unless this is set (for a gateway on another host that sets the headers).
    pub allow_headers_auth_on_public_bind: bool,
    /// How non-admins are scoped: `project_and_user` (Panko) or `project`.
    pub member_scope: MemberScope,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `almanac=debug`.
    pub log: String,
    /// Log lines as `text` (for people) or `json` (one object a line, for log collectors); both
    /// carry the request id on every line of a request.
    pub log_format: LogFormat,
    pub database: DatabaseConfig,
    pub limits: LimitsConfig,
    pub tokens: TokensConfig,
    pub audit: AuditConfig,
    /// Policy rules that replace Panko's defaults, by name (see `auth::policy`).
    pub policy: BTreeMap<String, String>,
    /// The config file this was read from (for error messages); not a setting.
    #[serde(skip)]
    pub source: Option<PathBuf>,
    pub http: HttpConfig,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TokensConfig {
    /// Where the bootstrap admin token is written (mode 0600) when a server starts on a store
    /// without tokens.
    pub bootstrap_file: PathBuf,
    /// Seconds a verified token is trusted before the store is read again; a token revoked by
    /// another server stops working within this time (at once on the server that revoked it).
    pub cache_seconds: u64,
}

/// The audit trail of Almanac's own actions (ckanext-event-audit's trackers).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// `almanac.token.create` and `almanac.token.revoke`.
    pub tokens: bool,
    /// `almanac.auth.failure`.
    pub auth_failures: bool,
    /// `almanac.events.ingest`, one per accepted batch.
    pub ingest: bool,
    /// Event types not to record, e.g. `["almanac.events.ingest"]`.
    pub ignore_actions: Vec<String>,
    /// Authentication failures recorded per minute and process at most; the next record
    /// counts those left out.
    pub auth_failures_per_minute: u32,
}
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Connections in the pool.
    pub pool_size: u32,
    /// How long a request waits for a connection before a 503, in milliseconds.
    pub connect_timeout_ms: u64,
    /// SQLite `synchronous`: `FULL` (default; acknowledged events survive power loss) or
    /// `NORMAL` (they survive a process crash; the last commits may be lost on power loss).
    pub sqlite_synchronous: String,
    /// How long an SQLite writer waits for the write lock, in milliseconds.
    pub sqlite_busy_timeout_ms: u64,
    /// SQLite page cache of each pooled connection, in KiB.
    pub sqlite_cache_kib: u32,
    /// SQLite page cache of the ingest writer's connection, in KiB.
    pub sqlite_writer_cache_kib: u32,
    /// WAL pages after which SQLite checkpoints (see `DbOptions::sqlite_wal_autocheckpoint`).
    pub sqlite_wal_autocheckpoint: u32,
}

/// The largest `limits.max_string_bytes` accepted (see `Config::validate`).
pub const MAX_STRING_BYTES: usize = 2_048;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Page size when a query gives no `limit` (Panko's `default_api_return_limit`).
    pub default_limit: u32,
    /// Largest accepted `limit`.
    pub max_limit: u32,
    /// Most q items in one query.
    pub max_q_items: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Most events in one ingest batch.
    pub max_batch_events: usize,
    /// Longest string trait value, in bytes.
    pub max_string_bytes: usize,
    /// Most traits on one event.
    pub max_traits_per_event: usize,
    /// Deepest nesting of arrays and objects in an event's `raw`.
    pub max_raw_depth: usize,
    /// Events each caller (token, or user in `headers` mode) may ingest per second, on average;
    /// 0 means no limit. Past it: 429 with `Retry-After`.
    pub ingest_events_per_second: u32,
    /// Events a caller may ingest at once above that rate (at least `max_batch_events`).
    pub ingest_burst_events: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1:8977".into(),
            database_url: "sqlite://almanac.db".into(),
            auth: AuthMode::Token,
            allow_headers_auth_on_public_bind: false,
            member_scope: MemberScope::default(),
            workers: 0,
            log: "info".into(),
            log_format: LogFormat::Text,
            database: DatabaseConfig::default(),
            limits: LimitsConfig::default(),
            tokens: TokensConfig::default(),
            audit: AuditConfig::default(),
            policy: BTreeMap::new(),
            source: None,
            http: HttpConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        let d = DbOptions::default();
        DatabaseConfig {
            pool_size: d.pool_size,
            connect_timeout_ms: d.connect_timeout.as_millis() as u64,
            sqlite_synchronous: d.sqlite_synchronous,
            sqlite_busy_timeout_ms: d.sqlite_busy_timeout.as_millis() as u64,
            sqlite_cache_kib: d.sqlite_cache_kib,
            sqlite_writer_cache_kib: d.sqlite_writer_cache_kib,
            sqlite_wal_autocheckpoint: d.sqlite_wal_autocheckpoint,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            default_limit: 100,
            max_limit: 10_000,
            max_q_items: 100,
            max_body_bytes: 32 * 1024 * 1024,
            max_batch_events: 10_000,
            max_string_bytes: 1024,
            max_traits_per_event: 256,
            max_raw_depth: 64,
            ingest_events_per_second: 50_000,
            ingest_burst_events: 100_000,
        }
    }
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            bootstrap_file: PathBuf::from("almanac-bootstrap-token"),
            cache_seconds: 5,
        }
    }
}

/// Connection handling of the HTTP server: timeouts against slow or stalled clients, and the
/// graceful shutdown on SIGTERM.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// How long a client may take to send the request head (line and headers) after connecting,
    /// in milliseconds, before it gets a 408 and is disconnected (slowloris). 0 disables it.
    pub client_request_timeout_ms: u64,
    /// How long a connection may take to shut down after its last response, in milliseconds.
    pub client_disconnect_timeout_ms: u64,
    /// How long an idle keep-alive connection stays open, in seconds. 0 disables keep-alive.
    pub keep_alive_secs: u64,
    /// On SIGTERM: how long in-flight requests may take to finish before they are dropped, in
    /// seconds.
    pub shutdown_timeout_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            // actix-web's own defaults are 5 s, 1 s and 5 s; a request head takes one round trip.
            client_request_timeout_ms: 5_000,
            client_disconnect_timeout_ms: 1_000,
            keep_alive_secs: 5,
            // Long enough for a full ingest batch to commit under load.
            shutdown_timeout_secs: 30,
        }
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            tokens: true,
            auth_failures: true,
            ingest: true,
            ignore_actions: Vec::new(),
            auth_failures_per_minute: 60,
        }
    }
}

impl AuditConfig {
    /// Whether records of this event type are kept.
    pub fn tracks(&self, action: &str) -> bool {
        let on = match action {
            audit::TOKEN_CREATE | audit::TOKEN_REVOKE => self.tokens,
            audit::AUTH_FAILURE => self.auth_failures,
            audit::EVENTS_INGEST => self.ingest,
            _ => true,
        };
        on && !self.ignore_actions.iter().any(|a| a == action)
    }

    /// A record of `action` by `actor`, if that action is tracked.
    pub fn entry(&self, action: &'static str, actor: audit::Actor) -> Option<audit::AuditEntry> {
        self.tracks(action)
            .then(|| audit::AuditEntry::new(action, actor))
    }
}

/// Top-level keys that `ALMANAC_*` variables may set; other `ALMANAC_*` variables (such as
/// `ALMANAC_CONFIG`) are not settings and are ignored here.
const ENV_KEYS: &[&str] = &[
    "bind",
    "database_url",
    "auth",
    "workers",
    "log",
    "log_format",
    "database",
    "limits",
    "allow_headers_auth_on_public_bind",
    "member_scope",
    "tokens",
    "audit",
    "http",
];

impl Config {
    /// Loads file, then environment, then `overrides` (flags given on the command line).
    pub fn load(file: Option<&Path>, overrides: &ConfigOverrides) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let source = match file {
            Some(path) => {
                if !path.exists() {
                    anyhow::bail!("config file {} does not exist", path.display());
                }
                Some(path.to_path_buf())
            }
            None => Some(PathBuf::from("almanac.toml")).filter(|p| p.exists()),
        };
        if let Some(path) = &source {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment
            .merge(
                Env::prefixed("ALMANAC_")
                    .split("__")
                    // figment filters before it lowercases the keys: compare case-insensitively.
                    .filter(|key| {
                        let section = key.as_str().split('.').next().unwrap_or("");
                        ENV_KEYS.iter().any(|k| k.eq_ignore_ascii_case(section))
                    }),
            )
            .merge(Serialized::defaults(overrides));
        let mut config: Config = figment.extract()?;
        config.source = source;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let l = &self.limits;
        anyhow::ensure!(
            l.default_limit >= 1,
            "limits.default_limit must be at least 1"
        );
        anyhow::ensure!(
            l.max_limit >= l.default_limit,
            "limits.max_limit must be at least limits.default_limit"
        );
        anyhow::ensure!(
            l.max_batch_events >= 1,
            "limits.max_batch_events must be at least 1"
        );
        // String trait values are B-tree keys (the (name, value) filter index). PostgreSQL
        // refuses entries over about 2,700 bytes, so a larger limit would accept batches that
        // the store then cannot write.
        anyhow::ensure!(
            (1..=MAX_STRING_BYTES).contains(&l.max_string_bytes),
            "limits.max_string_bytes must be between 1 and {MAX_STRING_BYTES}: string trait \
             values are index keys, and PostgreSQL's index entries are limited to about 2,700 bytes"
        );
        anyhow::ensure!(
            self.database.pool_size >= 1,
            "database.pool_size must be at least 1"
        );
        anyhow::ensure!(
            l.ingest_events_per_second == 0 || l.ingest_burst_events as usize >= l.max_batch_events,
            "limits.ingest_burst_events must be at least limits.max_batch_events, or a full \
             batch could never be accepted"
        );
        for action in &self.audit.ignore_actions {
            anyhow::ensure!(
                audit::ACTIONS.contains(&action.as_str()),
                "audit.ignore_actions: unknown action \"{action}\"; the actions are {}",
                audit::ACTIONS.join(", ")
            );
        }
        self.policy()?;
        if self.auth == AuthMode::Headers && !self.allow_headers_auth_on_public_bind {
            anyhow::ensure!(
                is_loopback(&self.bind),
                "auth = headers trusts X-User-Id, X-Project-Id and X-Roles from any client, so it \
                 is refused on {}, which is not a loopback address. Bind to 127.0.0.1, use \
                 auth = token, or, behind a gateway that sets those headers, set \
                 allow_headers_auth_on_public_bind = true \
                 (ALMANAC_ALLOW_HEADERS_AUTH_ON_PUBLIC_BIND=true)",
                self.bind
            );
        }
        let sync = self.database.sqlite_synchronous.to_ascii_uppercase();
        anyhow::ensure!(
            ["FULL", "NORMAL", "EXTRA"].contains(&sync.as_str()),
            "database.sqlite_synchronous must be FULL, NORMAL or EXTRA"
        );
        Ok(())
    }

    /// The policy in force: the defaults with the `[policy]` rules. A bad rule is an error that
    /// names the rule and, when it came from the config file, the file and line.
    pub fn policy(&self) -> anyhow::Result<Policy> {
        Policy::with_overrides(&self.policy).map_err(|error| {
            match self
                .source
                .as_deref()
                .and_then(|f| policy_line(f, &error.rule))
            {
                Some((file, line)) => anyhow::anyhow!("{file}:{line}: {error}"),
                None => anyhow::anyhow!("{error}"),
            }
        })
    }

    pub fn db_options(&self) -> DbOptions {
        DbOptions {
            pool_size: self.database.pool_size,
            connect_timeout: Duration::from_millis(self.database.connect_timeout_ms),
            sqlite_synchronous: self.database.sqlite_synchronous.to_ascii_uppercase(),
            sqlite_busy_timeout: Duration::from_millis(self.database.sqlite_busy_timeout_ms),
            sqlite_cache_kib: self.database.sqlite_cache_kib,
            sqlite_writer_cache_kib: self.database.sqlite_writer_cache_kib,
            sqlite_wal_autocheckpoint: self.database.sqlite_wal_autocheckpoint,
        }
    }

    pub fn ingest_limits(&self) -> IngestLimits {
        IngestLimits {
            max_batch_events: self.limits.max_batch_events,
            max_string_bytes: self.limits.max_string_bytes,
            max_traits_per_event: self.limits.max_traits_per_event,
            max_raw_depth: self.limits.max_raw_depth,
            reserved_type_prefix: Some(audit::RESERVED_PREFIX),
        }
    }
}

/// Whether every address `bind` names is a loopback address (a name that does not resolve is
/// not known to be one).
fn is_loopback(bind: &str) -> bool {
    use std::net::ToSocketAddrs;
    match bind.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

/// Where a `[policy]` rule is written in a config file: the file's name and the 1-based line.
fn policy_line(file: &Path, rule: &str) -> Option<(String, usize)> {
    #[derive(Deserialize)]
    struct Spans {
        #[serde(default)]
        policy: BTreeMap<String, toml::Spanned<String>>,
    }
    let text = std::fs::read_to_string(file).ok()?;
    let spans: Spans = toml::from_str(&text).ok()?;
    let start = spans.policy.get(rule)?.span().start;
    let line = text[..start].matches('\n').count() + 1;
    Some((file.display().to_string(), line))
}

/// Settings given as flags; only those present override the file and environment.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ConfigOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
}
