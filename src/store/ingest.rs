//! Storing a validated batch: all of it in one transaction, duplicates skipped and reported.

use std::collections::{BTreeSet, HashMap, HashSet};

use diesel::connection::Connection;
use diesel::prelude::ExecuteCopyFromDsl;
use diesel::RunQueryDsl;
use serde::Serialize;
use utoipa::ToSchema;

use super::audit::{self, AuditEntry};
use super::names::{self, NameTable};
use super::rows::{Count, IdMessage};
use super::sqlite_inserts;
use super::trait_doc;
use super::trait_numbers;
use super::write_transaction;
use crate::db::schema;
use crate::db::sql::{Bind, Sql};
use crate::db::AnyConnection;
use crate::error::ApiError;
use crate::model::{is_tenancy_trait, NewEvent, TraitType, TraitValue};

/// PostgreSQL: events per INSERT (7 binds each), and (event type, name, type) rows per statement
/// (3 binds each): well under its 65,535 bind parameters. (It writes a group's traits of one type
/// with one `COPY`, which binds nothing; SQLite's inserts are `store::sqlite_inserts`.)
const EVENT_CHUNK: usize = 1_000;
const TRAIT_CHUNK: usize = 3_000;

/// What happened to a batch. Returned with the 201, which is sent only after the commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct IngestOutcome {
    /// Events in the batch.
    pub received: usize,
    /// Events stored by this request.
    pub stored: usize,
    /// message_ids not stored because an event with that id was already stored, or came earlier
    /// in the same batch (first one wins). Each listed once per skipped event.
    pub duplicates: Vec<String>,
    /// The message_id of every event of the batch, in order (including generated ones).
    pub message_ids: Vec<String>,
}

/// Stores a batch atomically: either every new event with all its traits, or nothing.
pub fn insert_batch(
    conn: &mut AnyConnection,
    batch: &[NewEvent],
) -> Result<IngestOutcome, ApiError> {
    let write = BatchWrite {
        events: batch,
        audit: None,
    };
    insert_batches(conn, &[write])
        .outcomes
        .pop()
        .unwrap_or_else(|| {
            Err(ApiError::internal(anyhow::anyhow!(
                "no outcome for a batch"
            )))
        })
}

/// One request's batch, and the audit record to store with it (completed with the outcome's
/// counts), if ingestion is tracked.
#[derive(Clone, Copy)]
pub struct BatchWrite<'a> {
    pub events: &'a [NewEvent],
    pub audit: Option<&'a AuditEntry>,
}

/// What became of a group of batches.
pub struct GroupOutcome {
    /// Each batch's outcome, in the order given.
    pub outcomes: Vec<Result<IngestOutcome, ApiError>>,
    /// Transactions committed: 1 for a group stored whole, up to one per batch after a failure.
    pub commits: usize,
}

impl GroupOutcome {
    /// Nothing stored: every one of `batches` batches fails with `error`.
    pub fn failed(batches: usize, error: &ApiError) -> GroupOutcome {
        GroupOutcome {
            outcomes: (0..batches).map(|_| Err(error.replicate())).collect(),
            commits: 0,
        }
    }
}

/// Stores several batches in one transaction (group commit): one commit, so one disk flush, for
/// all of them, each batch with its audit record.
pub fn insert_batches(conn: &mut AnyConnection, batches: &[BatchWrite<'_>]) -> GroupOutcome {
    let mut items: Vec<BatchWrite<'_>> = batches.to_vec();
    insert_growing_group(conn, &mut items, |b| *b, |_| false)
}

/// Stores a group of batches in one transaction, like [`insert_batches`], where the group may
/// grow while it is being stored: whenever every item of `items` is stored, `more` is called,
/// and may push more items (it returns whether it did). The transaction commits once `more`
/// returns false. The ingest writer on SQLite uses this to store the first batch of a group while
/// the others are still being decoded (see `store::writer`). `write` gives an item's batch.
///
/// The group's transaction has no savepoint per batch. On SQLite a savepoint copies every page
/// it changes first into an in-memory journal, so that it can be undone; with a savepoint per
/// batch that was a second copy of every index page a group dirties, and the statement journals
/// of multi-row inserts a third (see `store::sqlite_inserts`): together they cost a fifth of 1M-event
/// ingest (docs/PERFORMANCE.md). Batches are validated before they get here, so a batch that
/// fails in the database is rare; when the group's transaction fails, it is rolled back whole and
/// each batch taken so far is stored again in a transaction of its own, so that a batch that
/// fails still leaves the others stored, and gets its own error. Outcomes are in the order of
/// `items`.
///
/// On PostgreSQL `more` is never called: there the names of a group's batches must be interned
/// before the group's transaction (`intern_names_first`), so the group is complete when given.
pub fn insert_growing_group<T>(
    conn: &mut AnyConnection,
    items: &mut Vec<T>,
    write: impl for<'x> Fn(&'x T) -> BatchWrite<'x>,
    mut more: impl FnMut(&mut Vec<T>) -> bool,
) -> GroupOutcome {
    let batches: Vec<BatchWrite<'_>> = items.iter().map(&write).collect();
    if let Err(error) = intern_names_first(conn, &batches) {
        return GroupOutcome::failed(items.len(), &error);
    }
    let group = write_transaction(conn, |conn| {
        let mut outcomes = Vec::with_capacity(items.len());
        loop {
            while let Some(item) = items.get(outcomes.len()) {
                outcomes.push(store_batch(conn, &write(item))?);
            }
            if matches!(conn, AnyConnection::Postgresql(_)) || !more(items) {
                return Ok(outcomes);
            }
        }
    });
    match group {
        Ok(outcomes) => GroupOutcome {
            outcomes: outcomes.into_iter().map(Ok).collect(),
            commits: 1,
        },
        Err(error) if items.len() == 1 => GroupOutcome {
            outcomes: vec![Err(error)],
            commits: 0,
        },
        Err(error) => {
            tracing::warn!(%error, batches = items.len(), "an ingest group failed; storing its batches one by one");
            let outcomes: Vec<_> = items
                .iter()
                .map(|item| write_transaction(conn, |conn| store_batch(conn, &write(item))))
                .collect();
            GroupOutcome {
                commits: outcomes.iter().filter(|o| o.is_ok()).count(),
                outcomes,
            }
        }
    }
}

/// One batch and its audit record, inside the caller's transaction.
fn store_batch(
    conn: &mut AnyConnection,
    batch: &BatchWrite<'_>,
) -> Result<IngestOutcome, ApiError> {
    let outcome = insert_in_transaction(conn, batch.events)?;
    if let Some(entry) = batch.audit {
        audit::record(conn, &[audit::with_outcome(entry, &outcome)])?;
    }
    Ok(outcome)
}

/// PostgreSQL: interns every name the group uses (event types, trait names, tenancy values, of
/// its events and audit records) in a short transaction of its own, before the group's.
///
/// PostgreSQL runs two writer threads. Inside a group's transaction each batch interns its own
/// names, so one transaction can insert a new name `b` and then a new name `a` while another
/// inserts `a` and then `b`: each waits for the other's uncommitted row, and PostgreSQL aborts
/// one ("deadlock detected", a 503 for its batches; seen in a 100k-event load, and reproduced by
/// `concurrent_batches_with_new_names_all_succeed`). Here each table's rows are inserted in one
/// sorted pass and committed at once, so two writers take the rows' locks in the same order; in
/// the group's transaction the names then already exist, and an `ON CONFLICT DO NOTHING` on a
/// committed row waits for nothing. A name interned for a batch
/// that then fails stays, unused, which is harmless (names are never deleted). SQLite has one
/// writer and needs none of this.
fn intern_names_first(
    conn: &mut AnyConnection,
    batches: &[BatchWrite<'_>],
) -> Result<(), ApiError> {
    if !matches!(conn, AnyConnection::Postgresql(_)) {
        return Ok(());
    }
    // Audit records' names do not depend on the counts they carry.
    let placeholder = IngestOutcome {
        received: 0,
        stored: 0,
        duplicates: Vec::new(),
        message_ids: Vec::new(),
    };
    let now = crate::model::time::now_micros();
    let audit_events: Vec<NewEvent> = batches
        .iter()
        .filter_map(|b| b.audit)
        .map(|entry| audit::with_outcome(entry, &placeholder).to_event(now))
        .collect();
    let events: Vec<&NewEvent> = batches
        .iter()
        .flat_map(|b| b.events.iter())
        .chain(audit_events.iter())
        .collect();
    let types: BTreeSet<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let trait_names: BTreeSet<&str> = events
        .iter()
        .flat_map(|e| e.traits.iter().map(|t| t.name.as_str()))
        .collect();
    let tenants: BTreeSet<&str> = events
        .iter()
        .flat_map(|e| [e.string_trait("project_id"), e.string_trait("user_id")])
        .flatten()
        .collect();
    conn.transaction(|conn| {
        for (table, names) in [
            (NameTable::EventTypes, types),
            (NameTable::TraitNames, trait_names),
            (NameTable::Tenants, tenants),
        ] {
            let names: Vec<&str> = names.into_iter().collect();
            names::insert(conn, table, &names)?;
        }
        Ok(())
    })
}

/// Stores a batch inside the caller's transaction; duplicates are skipped and reported.
pub(super) fn insert_in_transaction(
    conn: &mut AnyConnection,
    batch: &[NewEvent],
) -> Result<IngestOutcome, ApiError> {
    let mut seen = HashSet::with_capacity(batch.len());
    let mut fresh: Vec<&NewEvent> = Vec::with_capacity(batch.len());
    let mut duplicates = Vec::new();
    for event in batch {
        if seen.insert(event.message_id.as_str()) {
            fresh.push(event);
        } else {
            duplicates.push(event.message_id.clone());
        }
    }

    let stored_ids = store_events(conn, &fresh)?;

    // An event that is in the batch but got no id was already stored (ON CONFLICT DO NOTHING).
    let mut late_duplicates: Vec<String> = fresh
        .iter()
        .filter(|e| !stored_ids.contains_key(e.message_id.as_str()))
        .map(|e| e.message_id.clone())
        .collect();
    late_duplicates.append(&mut duplicates);
    Ok(IngestOutcome {
        received: batch.len(),
        stored: stored_ids.len(),
        duplicates: late_duplicates,
        message_ids: batch.iter().map(|e| e.message_id.clone()).collect(),
    })
}

/// Inside the transaction: interns names, inserts events and their traits. Returns the new
/// events' ids by message_id.
fn store_events(
    conn: &mut AnyConnection,
    events: &[&NewEvent],
) -> Result<HashMap<String, i64>, ApiError> {
    let type_names: BTreeSet<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let type_names: Vec<&str> = type_names.into_iter().collect();
    let type_ids = names::intern(conn, NameTable::EventTypes, &type_names)?;

    let trait_names: BTreeSet<&str> = events
        .iter()
        .flat_map(|e| e.traits.iter().map(|t| t.name.as_str()))
        .collect();
    let trait_names: Vec<&str> = trait_names.into_iter().collect();
    let name_ids = names::intern(conn, NameTable::TraitNames, &trait_names)?;

    let tenant_values: BTreeSet<&str> = events
        .iter()
        .flat_map(|e| [e.string_trait("project_id"), e.string_trait("user_id")])
        .flatten()
        .collect();
    let tenant_values: Vec<&str> = tenant_values.into_iter().collect();
    let tenant_ids = names::intern(conn, NameTable::Tenants, &tenant_values)?;
    let tenant_ref = |value: Option<&str>| -> Result<Option<i64>, ApiError> {
        value.map(|v| id_of(&tenant_ids, v)).transpose()
    };

    // Each event's stored traits by name id, for its copy and its trait rows.
    let stored = events
        .iter()
        .map(|e| stored_traits(e, &name_ids))
        .collect::<Result<Vec<_>, ApiError>>()?;
    let inserted = match conn {
        AnyConnection::Sqlite(sqlite) => {
            let rows = events
                .iter()
                .zip(&stored)
                .map(|(e, traits)| {
                    Ok(sqlite_inserts::EventRow {
                        message_id: &e.message_id,
                        event_type_id: id_of(&type_ids, &e.event_type)?,
                        generated: e.generated,
                        project_ref: tenant_ref(e.string_trait("project_id"))?,
                        user_ref: tenant_ref(e.string_trait("user_id"))?,
                        raw: e.raw.get(),
                        numbers: trait_numbers::encode(traits.iter().copied()),
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            sqlite_inserts::insert_events(sqlite, &rows)?
        }
        AnyConnection::Postgresql(_) => {
            insert_events_postgres(conn, events, &stored, &type_ids, tenant_ref)?
        }
    };
    let mut ids = HashMap::with_capacity(inserted.len());
    ids.extend(
        inserted
            .into_iter()
            .map(|(id, message_id)| (message_id, id)),
    );

    insert_traits(conn, events, &stored, &ids)?;
    record_event_type_traits(conn, events, &ids, &type_ids, &name_ids)?;
    Ok(ids)
}

/// PostgreSQL: multi-row `VALUES` of [`EVENT_CHUNK`] events, each row with its `jsonb` trait
/// document (`trait_doc`); returns (id, message id) of each event inserted.
fn insert_events_postgres(
    conn: &mut AnyConnection,
    events: &[&NewEvent],
    stored: &[Vec<(i64, &TraitValue)>],
    type_ids: &HashMap<String, i64>,
    tenant_ref: impl Fn(Option<&str>) -> Result<Option<i64>, ApiError>,
) -> Result<Vec<(i64, String)>, ApiError> {
    let mut inserted = Vec::with_capacity(events.len());
    for (chunk, chunk_traits) in events.chunks(EVENT_CHUNK).zip(stored.chunks(EVENT_CHUNK)) {
        let mut sql = Sql::new(
            "INSERT INTO events \
             (message_id, event_type_id, generated, project_ref, user_ref, raw, traits) VALUES ",
        );
        let rows = chunk
            .iter()
            .zip(chunk_traits)
            .map(|(e, traits)| {
                Ok([
                    Bind::Text(e.message_id.clone()),
                    Bind::BigInt(id_of(type_ids, &e.event_type)?),
                    Bind::BigInt(e.generated),
                    Bind::NullableBigInt(tenant_ref(e.string_trait("project_id"))?),
                    Bind::NullableBigInt(tenant_ref(e.string_trait("user_id"))?),
                    Bind::Text(e.raw.get().to_string()),
                    Bind::Jsonb(trait_doc::encode(traits.iter().copied())),
                ])
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        sql.push_rows(rows);
        sql.push(" ON CONFLICT (message_id) DO NOTHING RETURNING id, message_id");
        if chunk.len() < EVENT_CHUNK {
            sql.uncached();
        }
        inserted.extend(
            sql.load::<IdMessage>(conn)?
                .into_iter()
                .map(|row| (row.id, row.message_id)),
        );
    }
    Ok(inserted)
}

/// The event's traits as stored in the trait tables (all but the tenancy traits), by name id.
fn stored_traits<'a>(
    event: &'a NewEvent,
    name_ids: &HashMap<String, i64>,
) -> Result<Vec<(i64, &'a TraitValue)>, ApiError> {
    event
        .traits
        .iter()
        .filter(|t| !is_tenancy_trait(&t.name, t.value.trait_type()))
        .map(|t| Ok((id_of(name_ids, &t.name)?, &t.value)))
        .collect()
}

fn id_of(ids: &HashMap<String, i64>, name: &str) -> Result<i64, ApiError> {
    ids.get(name)
        .copied()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("interned name {name:?} has no id")))
}

/// The trait rows of the stored events: `stored` holds each event's [`stored_traits`].
fn insert_traits(
    conn: &mut AnyConnection,
    events: &[&NewEvent],
    stored: &[Vec<(i64, &TraitValue)>],
    ids: &HashMap<String, i64>,
) -> Result<(), ApiError> {
    // One pass over the events, each event's id looked up once, its rows put with their type's.
    let mut by_type: [Vec<(i64, i64, &TraitValue)>; TraitType::ALL.len()] = Default::default();
    for (event, traits) in events.iter().zip(stored) {
        let Some(&event_id) = ids.get(&event.message_id) else {
            continue; // a duplicate: not stored
        };
        for &(name_id, value) in traits {
            let trait_type = value.trait_type();
            let i = TraitType::ALL
                .iter()
                .position(|t| t.code() == trait_type.code())
                .ok_or_else(|| {
                    ApiError::internal(anyhow::anyhow!("{trait_type:?} is not in TraitType::ALL"))
                })?;
            by_type[i].push((event_id, name_id, value));
        }
    }
    for (trait_type, mut rows) in TraitType::ALL.into_iter().zip(by_type) {
        if rows.is_empty() {
            continue;
        }
        // In (event, name) order. On SQLite that is the primary key's: each insert into it is an
        // append, which SQLite makes without a descent from the root; the (name, value) index's
        // inserts are scattered by value whatever the order (docs/PERFORMANCE.md, session 7). On
        // PostgreSQL, whose trait tables have no key, it keeps each heap in event-id order, which
        // their BRIN index on event_id relies on.
        rows.sort_by_key(|(event_id, name_id, _)| (*event_id, *name_id));
        match conn {
            AnyConnection::Sqlite(sqlite) => {
                sqlite_inserts::insert_traits(sqlite, trait_type, &rows)?
            }
            AnyConnection::Postgresql(_) => copy_trait_rows(conn, trait_type, &rows)?,
        }
    }
    Ok(())
}

/// Executes `head (…), (…), … tail`, [`TRAIT_CHUNK`] rows a statement. Full chunks share one
/// statement text, prepared once; a partial chunk runs uncached, since every row count would be
/// another statement kept prepared on the connection for good.
fn insert_in_chunks<T, const N: usize>(
    conn: &mut AnyConnection,
    head: &str,
    tail: &str,
    rows: &[T],
    binds: impl Fn(&T) -> [Bind; N],
) -> Result<(), ApiError> {
    for chunk in rows.chunks(TRAIT_CHUNK) {
        let mut sql = Sql::new(head);
        sql.push_rows(chunk.iter().map(&binds));
        sql.push(tail);
        if chunk.len() < TRAIT_CHUNK {
            sql.uncached();
        }
        sql.execute(conn)?;
    }
    Ok(())
}

/// PostgreSQL: all the rows of one type in one `COPY … FROM STDIN (FORMAT binary)`. COPY
/// writes the rows into the heap a page at a time (one WAL record a page, not one a row), and the
/// binary format spares the server parsing text; before, the rows were one `INSERT … SELECT *
/// FROM UNNEST(…)` of three array literals (docs/PERFORMANCE.md, session 12).
fn copy_trait_rows(
    conn: &mut AnyConnection,
    trait_type: TraitType,
    rows: &[(i64, i64, &TraitValue)],
) -> Result<(), ApiError> {
    let AnyConnection::Postgresql(pg) = conn else {
        return Err(ApiError::internal(anyhow::anyhow!("COPY is PostgreSQL's")));
    };
    // Every row is of `trait_type` (see `insert_traits`); a value of another type is an error,
    // never a misplaced value.
    macro_rules! copy {
        ($table:ident, $row:ident, $value:pat => $column:expr) => {{
            let rows = rows
                .iter()
                .map(|&(event_id, name_id, value)| match value {
                    $value => Ok($row {
                        event_id,
                        name_id,
                        value: $column,
                    }),
                    _ => Err(ApiError::internal(anyhow::anyhow!(
                        "a trait row of another type"
                    ))),
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            let copy = diesel::copy_from(schema::$table::table).from_insertable(&rows);
            ExecuteCopyFromDsl::execute(copy, pg)?;
        }};
    }
    match trait_type {
        TraitType::String => copy!(traits_string, StringRow, TraitValue::String(s) => s.as_str()),
        TraitType::Integer => copy!(traits_integer, IntegerRow, TraitValue::Integer(n) => *n),
        TraitType::Float => copy!(traits_float, FloatRow, TraitValue::Float(f) => *f),
        TraitType::Datetime => copy!(traits_datetime, DatetimeRow, TraitValue::Datetime(n) => *n),
    }
    Ok(())
}

/// The trait rows as `COPY` writes them, one struct per table.
#[derive(diesel::Insertable)]
#[diesel(table_name = schema::traits_string, treat_none_as_default_value = false)]
struct StringRow<'a> {
    event_id: i64,
    name_id: i64,
    value: &'a str,
}

#[derive(diesel::Insertable)]
#[diesel(table_name = schema::traits_integer, treat_none_as_default_value = false)]
struct IntegerRow {
    event_id: i64,
    name_id: i64,
    value: i64,
}

#[derive(diesel::Insertable)]
#[diesel(table_name = schema::traits_float, treat_none_as_default_value = false)]
struct FloatRow {
    event_id: i64,
    name_id: i64,
    value: f64,
}

#[derive(diesel::Insertable)]
#[diesel(table_name = schema::traits_datetime, treat_none_as_default_value = false)]
struct DatetimeRow {
    event_id: i64,
    name_id: i64,
    value: i64,
}

/// Remembers which (name, type) pairs each event type has, for `/v2/event_types/{t}/traits`.
fn record_event_type_traits(
    conn: &mut AnyConnection,
    events: &[&NewEvent],
    ids: &HashMap<String, i64>,
    type_ids: &HashMap<String, i64>,
    name_ids: &HashMap<String, i64>,
) -> Result<(), ApiError> {
    let mut pairs = BTreeSet::new();
    for event in events.iter().filter(|e| ids.contains_key(&e.message_id)) {
        let type_id = id_of(type_ids, &event.event_type)?;
        for t in &event.traits {
            pairs.insert((
                type_id,
                id_of(name_ids, &t.name)?,
                t.value.trait_type().code(),
            ));
        }
    }
    let pairs: Vec<_> = pairs.into_iter().collect();
    if let AnyConnection::Postgresql(_) = conn {
        // New pairs meet the same deadlock as new names (see `intern_names_first`), but must be
        // recorded only for events actually stored, so inside the group's transaction. Nearly
        // always they all exist already; otherwise the insert is serialized between the writers
        // by a transaction-level advisory lock, held until this group commits.
        if count_known_pairs(conn, &pairs)? == pairs.len() as i64 {
            return Ok(());
        }
        Sql::new(&format!("SELECT pg_advisory_xact_lock({TYPE_TRAITS_LOCK})")).execute(conn)?;
    }
    insert_type_trait_pairs(conn, &pairs)
}

/// The advisory lock key for inserting (event type, trait) pairs on PostgreSQL ("ETT" in
/// ASCII, distinct from the bootstrap token's key).
const TYPE_TRAITS_LOCK: i64 = 0x0045_5454;

/// How many of these pairs are already recorded.
fn count_known_pairs(conn: &mut AnyConnection, pairs: &[(i64, i64, i16)]) -> Result<i64, ApiError> {
    let mut known = 0;
    for chunk in pairs.chunks(TRAIT_CHUNK) {
        // Padded to a power of two by repeating the last pair (an `IN` list counts each stored
        // row once), so that few statement shapes exist and each is prepared once.
        let padded: Vec<(i64, i64, i16)> = (0..chunk.len().next_power_of_two())
            .map(|i| chunk[i.min(chunk.len() - 1)])
            .collect();
        let mut sql = Sql::new(
            "SELECT COUNT(*) AS n FROM event_type_traits WHERE (event_type_id, name_id, dtype) IN (",
        );
        sql.push_rows(padded.iter().map(pair_row));
        sql.push(")");
        known += sql.load::<Count>(conn)?.first().map_or(0, |c| c.n);
    }
    Ok(known)
}

/// The binds of an (event type id, name id, dtype) row.
fn pair_row(&(type_id, name_id, dtype): &(i64, i64, i16)) -> [Bind; 3] {
    [
        Bind::BigInt(type_id),
        Bind::BigInt(name_id),
        Bind::BigInt(i64::from(dtype)),
    ]
}

/// Inserts (event type id, name id, dtype) rows that do not exist yet, in the order given.
fn insert_type_trait_pairs(
    conn: &mut AnyConnection,
    pairs: &[(i64, i64, i16)],
) -> Result<(), ApiError> {
    match conn {
        AnyConnection::Sqlite(sqlite) => sqlite_inserts::insert_type_traits(sqlite, pairs),
        AnyConnection::Postgresql(_) => insert_in_chunks(
            conn,
            "INSERT INTO event_type_traits (event_type_id, name_id, dtype) VALUES ",
            " ON CONFLICT DO NOTHING",
            pairs,
            pair_row,
        ),
    }
}

/// The table holding traits of this type.
pub(crate) fn trait_table(t: TraitType) -> &'static str {
    match t {
        TraitType::String => "traits_string",
        TraitType::Integer => "traits_integer",
        TraitType::Float => "traits_float",
        TraitType::Datetime => "traits_datetime",
    }
}

pub(crate) fn bind_value(v: &TraitValue) -> Bind {
    match v {
        TraitValue::String(s) => Bind::Text(s.clone()),
        TraitValue::Integer(i) => Bind::BigInt(*i),
        TraitValue::Float(f) => Bind::Double(*f),
        TraitValue::Datetime(m) => Bind::BigInt(*m),
    }
}
