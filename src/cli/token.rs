//! `almanac token create|list|revoke`, working directly on the database (so an operator can
//! recover access with no token at all), and the bootstrap token of `serve`.

use std::io::Write;
use std::path::Path;

use clap::Subcommand;

use crate::auth::Access;
use crate::config::Config;
use crate::db::AnyConnection;
use crate::model::time;
use crate::store::audit::{self, Actor};
use crate::store::tokens::{self, NewToken, TokenRecord};

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token and print it (once: only its hash is stored).
    Create {
        /// The user the token acts as.
        #[arg(long)]
        user_id: String,
        /// The project the token acts in.
        #[arg(long)]
        project_id: String,
        /// A role (repeatable, or comma-separated); `admin` is admin under the default policy.
        #[arg(long = "role", value_delimiter = ',')]
        roles: Vec<String>,
        /// full, read (GET only) or ingest (POST /v2/events only).
        #[arg(long, default_value = "full", value_parser = parse_access)]
        access: Access,
        /// Lifetime, e.g. `90d`, `12h`, `30min`.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<std::time::Duration>,
        /// What the token is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List tokens (never their secrets).
    List {
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id (the `alm_<id>_…` part, as `list` shows it).
    Revoke { id: String },
}

fn parse_access(text: &str) -> Result<Access, String> {
    Access::parse(text).ok_or_else(|| format!("{text:?}: expected full, read or ingest"))
}

/// The actor of records made from the command line: the operating-system user.
fn cli_actor() -> Actor {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    Actor {
        user_id: Some(format!("cli:{user}")),
        project_id: None,
        token_id: None,
    }
}

pub fn run(config: &Config, conn: &mut AnyConnection, command: TokenCommand) -> anyhow::Result<()> {
    let now = time::now_micros();
    match command {
        TokenCommand::Create {
            user_id,
            project_id,
            roles,
            access,
            expires_in,
            description,
        } => {
            anyhow::ensure!(
                !user_id.is_empty() && !project_id.is_empty(),
                "--user-id and --project-id must not be empty"
            );
            let expires_at = expires_in
                .map(|d| {
                    i64::try_from(d.as_micros())
                        .ok()
                        .and_then(|us| now.checked_add(us))
                        .ok_or_else(|| anyhow::anyhow!("--expires-in is too large"))
                })
                .transpose()?;
            let new = NewToken {
                user_id,
                project_id,
                roles: roles.into_iter().filter(|r| !r.is_empty()).collect(),
                access,
                description,
                expires_at,
                created_by: "cli".into(),
            };
            let audit = config.audit.entry(audit::TOKEN_CREATE, cli_actor());
            let (record, token) = tokens::create(conn, &new, audit.as_ref(), now)?;
            eprintln!("Created token {} ({}).", record.id, describe(&record, now));
            eprintln!("It is shown only now; store it safely:");
            println!("{token}");
        }
        TokenCommand::List { json } => {
            for record in tokens::list(conn)? {
                if json {
                    println!("{}", serde_json::to_string(&as_json(&record, now))?);
                } else {
                    println!("{}  {}", record.id, describe(&record, now));
                }
            }
        }
        TokenCommand::Revoke { id } => {
            let audit = config.audit.entry(audit::TOKEN_REVOKE, cli_actor());
            match tokens::revoke(conn, &id, audit.as_ref(), now)? {
                Some(record) => eprintln!(
                    "Revoked token {} ({}); servers stop accepting it within tokens.cache_seconds.",
                    record.id,
                    describe(&record, now)
                ),
                None => anyhow::bail!("no token with id {id:?}"),
            }
        }
    }
    Ok(())
}

fn describe(r: &TokenRecord, now: i64) -> String {
    let state = if r.revoked_at.is_some() {
        "revoked".to_string()
    } else if !r.is_active(now) {
        "expired".to_string()
    } else {
        match r.expires_at {
            Some(t) => format!("active until {}", time::format_instant(t)),
            None => "active".to_string(),
        }
    };
    format!(
        "user {} project {} roles [{}] access {} {state}{}",
        r.user_id,
        r.project_id,
        r.roles.join(","),
        r.access.as_str(),
        if r.description.is_empty() {
            String::new()
        } else {
            format!(" \"{}\"", r.description)
        }
    )
}

fn as_json(r: &TokenRecord, now: i64) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "user_id": r.user_id,
        "project_id": r.project_id,
        "roles": r.roles,
        "access": r.access,
        "description": r.description,
        "created_at": time::format_instant(r.created_at),
        "created_by": r.created_by,
        "expires_at": r.expires_at.map(time::format_instant),
        "revoked_at": r.revoked_at.map(time::format_instant),
        "active": r.is_active(now),
    })
}

/// On a store without any token, creates the bootstrap admin token, writes it to the configured
/// file (mode 0600) and prints it once. Several servers starting together create one.
pub fn bootstrap(config: &Config, conn: &mut AnyConnection) -> anyhow::Result<()> {
    let new = NewToken {
        user_id: "admin".into(),
        project_id: "admin".into(),
        roles: vec!["admin".into()],
        access: Access::Full,
        description: "bootstrap admin token".into(),
        expires_at: None,
        created_by: "bootstrap".into(),
    };
    let audit = config.audit.entry(
        audit::TOKEN_CREATE,
        Actor {
            user_id: Some("almanac".into()),
            ..Actor::default()
        },
    );
    let Some((record, token)) =
        tokens::create_bootstrap(conn, &new, audit.as_ref(), time::now_micros())?
    else {
        return Ok(());
    };
    let file = &config.tokens.bootstrap_file;
    match write_private(file, &format!("{token}\n")) {
        Ok(()) => {
            tracing::warn!(token_id = %record.id, file = %file.display(),
                "no tokens in the store: created a bootstrap admin token (printed once on stdout, and saved to the file, readable only by its owner)");
        }
        Err(error) => {
            tracing::error!(token_id = %record.id, file = %file.display(), %error,
                "created a bootstrap admin token, but could not save it; it is printed once on stdout");
        }
    }
    println!("Almanac bootstrap admin token (shown once): {token}");
    std::io::stdout().flush()?;
    Ok(())
}

/// Writes a secret to a file only its owner can read or write: a new temporary file (created
/// with mode 0600 on Unix) in the same directory, renamed over the path. Whatever was at the path
/// (a symlink to another file, a file with wider permissions) is replaced, never written through.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
