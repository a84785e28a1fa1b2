//! API tokens: create (with its audit record, in one transaction), list, look up for
//! authentication, revoke, and the bootstrap token of an empty store.

use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{QueryableByName, RunQueryDsl};

use super::audit::{self, AuditEntry};
use super::write_transaction;
use crate::auth::token::{self, Access};
use crate::db::sql::{Bind, Sql};
use crate::db::{AnyConnection, Backend};
use crate::error::ApiError;
use crate::model::{Micros, TraitValue};

/// A token as stored, without its secret.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenRecord {
    pub id: String,
    pub user_id: String,
    pub project_id: String,
    pub roles: Vec<String>,
    pub access: Access,
    pub description: String,
    pub created_at: Micros,
    pub created_by: String,
    pub expires_at: Option<Micros>,
    pub revoked_at: Option<Micros>,
}

impl TokenRecord {
    /// Usable now: neither revoked nor expired.
    pub fn is_active(&self, now: Micros) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// What a new token is for.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub user_id: String,
    pub project_id: String,
    pub roles: Vec<String>,
    pub access: Access,
    pub description: String,
    pub expires_at: Option<Micros>,
    /// The creator's user id, or `cli` / `bootstrap`.
    pub created_by: String,
}

#[derive(QueryableByName)]
struct TokenRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    secret_hash: String,
    #[diesel(sql_type = Text)]
    user_id: String,
    #[diesel(sql_type = Text)]
    project_id: String,
    #[diesel(sql_type = Text)]
    roles: String,
    #[diesel(sql_type = Text)]
    access: String,
    #[diesel(sql_type = Text)]
    description: String,
    #[diesel(sql_type = BigInt)]
    created_at: i64,
    #[diesel(sql_type = Text)]
    created_by: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    expires_at: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    revoked_at: Option<i64>,
}

impl TokenRow {
    fn into_record(self) -> (TokenRecord, String) {
        let record = TokenRecord {
            id: self.id,
            user_id: self.user_id,
            project_id: self.project_id,
            roles: split_roles(&self.roles),
            // The column's CHECK allows only the three values.
            access: Access::parse(&self.access).unwrap_or(Access::Read),
            description: self.description,
            created_at: self.created_at,
            created_by: self.created_by,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
        };
        (record, self.secret_hash)
    }
}

const COLUMNS: &str = "SELECT id, secret_hash, user_id, project_id, roles, access, description, \
                       created_at, created_by, expires_at, revoked_at FROM api_tokens";

fn split_roles(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

/// An audit record about a token: its id as the target, and whom it acts as.
fn about_token(entry: &AuditEntry, record: &TokenRecord) -> AuditEntry {
    AuditEntry {
        target: Some(record.id.clone()),
        ..entry.clone()
    }
    .detail("token_user_id", TraitValue::String(record.user_id.clone()))
    .detail(
        "token_project_id",
        TraitValue::String(record.project_id.clone()),
    )
}

/// The audit record of a creation, completed with the new token's id and grants (no secret).
fn creation_record(entry: &AuditEntry, record: &TokenRecord) -> AuditEntry {
    let mut entry = about_token(entry, record)
        .detail("token_roles", TraitValue::String(record.roles.join(",")))
        .detail(
            "token_access",
            TraitValue::String(record.access.as_str().into()),
        );
    if let Some(expires) = record.expires_at {
        entry = entry.detail("token_expires_at", TraitValue::Datetime(expires));
    }
    entry
}

/// Inserts a token row (the transaction's first statement: a write, as SQLite wants).
/// Returns how many rows were inserted: 0 when `only_if_empty` and tokens exist.
fn insert(
    conn: &mut AnyConnection,
    new: &NewToken,
    now: Micros,
    only_if_empty: bool,
) -> Result<Option<(TokenRecord, String)>, ApiError> {
    let made = token::generate().map_err(ApiError::internal)?;
    let mut sql = Sql::new(
        "INSERT INTO api_tokens (id, secret_hash, user_id, project_id, roles, access, \
         description, created_at, created_by, expires_at) SELECT ",
    );
    let values = [
        Bind::Text(made.id.clone()),
        Bind::Text(made.secret_hash.clone()),
        Bind::Text(new.user_id.clone()),
        Bind::Text(new.project_id.clone()),
        Bind::Text(new.roles.join(",")),
        Bind::Text(new.access.as_str().into()),
        Bind::Text(new.description.clone()),
        Bind::BigInt(now),
        Bind::Text(new.created_by.clone()),
        Bind::NullableBigInt(new.expires_at),
    ];
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(value);
    }
    if only_if_empty {
        sql.push(" WHERE NOT EXISTS (SELECT 1 FROM api_tokens)");
    }
    if sql.execute(conn)? == 0 {
        return Ok(None);
    }
    let record = TokenRecord {
        id: made.id,
        user_id: new.user_id.clone(),
        project_id: new.project_id.clone(),
        roles: new.roles.clone(),
        access: new.access,
        description: new.description.clone(),
        created_at: now,
        created_by: new.created_by.clone(),
        expires_at: new.expires_at,
        revoked_at: None,
    };
    Ok(Some((record, made.token)))
}

/// Creates a token; returns it with the token text (the only time it exists outside the
/// caller). The audit record, if given, is committed with it.
pub fn create(
    conn: &mut AnyConnection,
    new: &NewToken,
    audit_entry: Option<&AuditEntry>,
    now: Micros,
) -> Result<(TokenRecord, String), ApiError> {
    write_transaction(conn, |conn| {
        let (record, text) = insert(conn, new, now, false)?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("token insert stored nothing")))?;
        if let Some(entry) = audit_entry {
            audit::record(conn, &[creation_record(entry, &record)])?;
        }
        Ok((record, text))
    })
}

/// Creates the bootstrap token if the store has no token at all (not even a revoked one: an
/// operator who revoked every token meant it, and `almanac token create` recovers access).
/// Safe when several servers start at once over one database: only one creates it.
pub fn create_bootstrap(
    conn: &mut AnyConnection,
    new: &NewToken,
    audit_entry: Option<&AuditEntry>,
    now: Micros,
) -> Result<Option<(TokenRecord, String)>, ApiError> {
    write_transaction(conn, |conn| {
        // SQLite: the INSERT … WHERE NOT EXISTS takes the write lock, so it is atomic alone.
        // PostgreSQL: two read-committed transactions could both see no row; a transaction-level
        // advisory lock serialises them, and the second then sees the first's token.
        if conn.backend() == Backend::Postgres {
            Sql::new("SELECT pg_advisory_xact_lock(7022365627850646378)").execute(conn)?;
        }
        let Some((record, text)) = insert(conn, new, now, true)? else {
            return Ok(None);
        };
        if let Some(entry) = audit_entry {
            audit::record(conn, &[creation_record(entry, &record)])?;
        }
        Ok(Some((record, text)))
    })
}

/// Every token, oldest first.
pub fn list(conn: &mut AnyConnection) -> Result<Vec<TokenRecord>, ApiError> {
    let rows = Sql::new(&format!("{COLUMNS} ORDER BY created_at, id")).load::<TokenRow>(conn)?;
    Ok(rows.into_iter().map(|r| r.into_record().0).collect())
}

/// One token by its public id.
pub fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<TokenRecord>, ApiError> {
    Ok(credentials(conn, id)?.map(|(record, _)| record))
}

/// A token and its secret's hash, for authentication.
pub fn credentials(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<(TokenRecord, String)>, ApiError> {
    let mut sql = Sql::new(&format!("{COLUMNS} WHERE id = "));
    sql.bind_text(id);
    Ok(sql.load::<TokenRow>(conn)?.pop().map(TokenRow::into_record))
}

/// Revokes a token. `None`: no such token. Revoking a revoked token changes nothing and records
/// nothing; the record says when it was first revoked.
pub fn revoke(
    conn: &mut AnyConnection,
    id: &str,
    audit_entry: Option<&AuditEntry>,
    now: Micros,
) -> Result<Option<TokenRecord>, ApiError> {
    write_transaction(conn, |conn| {
        let mut sql = Sql::new("UPDATE api_tokens SET revoked_at = ");
        sql.bind_i64(now)
            .push(" WHERE revoked_at IS NULL AND id = ")
            .bind_text(id);
        let changed = sql.execute(conn)? > 0;
        let Some((record, _)) = credentials(conn, id)? else {
            return Ok(None);
        };
        if changed {
            if let Some(entry) = audit_entry {
                audit::record(conn, &[about_token(entry, &record)])?;
            }
        }
        Ok(Some(record))
    })
}
