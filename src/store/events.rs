//! Reading events: `GET /v2/events` (filters, scope, sort, marker) and `GET /v2/events/{id}`.

use std::collections::HashMap;
use std::sync::Arc;

use diesel::RunQueryDsl;
use rustc_hash::FxHashMap;

use super::ingest::{bind_value, trait_table};
use super::name_cache::NameCache;
use super::names::NameTable;
use super::op_sql;
use super::page_traits;
use super::plan_cache::PlanCache;
use super::rows::{Count, EventRow, MarkerRow};
use super::trait_doc;
use super::trait_numbers;
use super::{read_snapshot, ReadCaches};
use crate::auth::EventScope;
use crate::db::sql::{Bind, Sql};
use crate::db::AnyConnection;
use crate::error::ApiError;
use crate::model::{is_tenancy_trait, EventPage, PageEvent, TraitType, TraitValue, TENANCY_TRAITS};
use crate::query::{Direction, EventQuery, Op, SortKey};

/// The event columns. Names (the event type, tenancy values, trait names) are ids, resolved
/// through the [`NameCache`] once per page rather than joined for every row: joins made
/// PostgreSQL spend longer planning each query than running it, and on SQLite each was a
/// B-tree search per row. Rows also carry a copy of their traits ([`page_traits`]).
const COLUMNS: &str = "SELECT e.id AS id, e.message_id AS message_id, \
     e.event_type_id AS event_type_id, e.generated AS generated, e.project_ref AS project_ref, \
     e.user_ref AS user_ref, e.raw AS raw, ";

/// The columns that complete [`COLUMNS`]: the row's copy of its traits, a document of them all
/// on PostgreSQL, the numeric ones on SQLite ([`page_traits`]).
fn traits_column(conn: &AnyConnection) -> &'static str {
    match conn {
        AnyConnection::Sqlite(_) => "NULL AS traits, e.numbers AS numbers",
        // As text: diesel would read `jsonb` in binary, a version byte before the text.
        AnyConnection::Postgresql(_) => "e.traits::text AS traits, NULL::bytea AS numbers",
    }
}

/// A trait filter matching fewer events than this drives the query from its index (see
/// [`choose_driver`]); at least twice the page size.
const DRIVER_CAP: i64 = 2_000;

/// The sort actually applied: the keys given (or `generated asc`), cut after `message_id`, and
/// always ending with `message_id` in the direction of the last key, so that every event has a
/// unique position and marker paging never skips or repeats one.
pub fn effective_sort(given: &[(SortKey, Direction)]) -> Vec<(SortKey, Direction)> {
    let mut keys = Vec::with_capacity(2);
    for &(key, dir) in given {
        if keys.iter().any(|(k, _)| *k == key) {
            continue;
        }
        keys.push((key, dir));
        if key == SortKey::MessageId {
            return keys;
        }
    }
    if keys.is_empty() {
        keys.push((SortKey::Generated, Direction::Asc));
    }
    let last_dir = keys[keys.len() - 1].1;
    keys.push((SortKey::MessageId, last_dir));
    keys
}

/// One page of events matching the query, within the caller's scope, read from one snapshot.
pub fn list(
    conn: &mut AnyConnection,
    caches: &ReadCaches,
    query: &EventQuery,
    scope: &EventScope,
    limit: u32,
) -> Result<EventPage, ApiError> {
    read_snapshot(conn, |conn| {
        list_in_snapshot(conn, caches, query, scope, limit)
    })
}

fn list_in_snapshot(
    conn: &mut AnyConnection,
    caches: &ReadCaches,
    query: &EventQuery,
    scope: &EventScope,
    limit: u32,
) -> Result<EventPage, ApiError> {
    let scope = resolve_scope(conn, &caches.names, scope)?;
    let filters = resolve_trait_filters(conn, &caches.names, query)?;
    let (Some(scope), Some(filters)) = (scope, filters) else {
        // Nothing can match; a marker still has to be one the caller can see.
        if let Some(marker) = &query.marker {
            return Err(marker_not_found(marker));
        }
        return Ok(EventPage::default());
    };
    let driver = match query.message_id {
        // The unique message_id index beats any trait index.
        Some(_) => None,
        None => choose_driver(conn, &caches.plans, &filters, limit)?,
    };
    let mut sql = match driver {
        Some(d) => {
            let f = &filters[d];
            let mut sql = Sql::new("WITH d AS MATERIALIZED (SELECT x.event_id AS event_id FROM ");
            push_index_condition(&mut sql, f);
            sql.push(") ")
                .push(COLUMNS)
                .push(traits_column(conn))
                .push(" FROM d CROSS JOIN events e")
                .push(" WHERE e.id = d.event_id");
            sql
        }
        None => select_events(conn),
    };
    push_scope(&mut sql, &scope);

    if let Some(event_type) = &query.event_type {
        let ids = caches
            .names
            .ids(conn, NameTable::EventTypes, &[event_type.as_str()])?;
        let Some(id) = ids.get(event_type) else {
            return Ok(EventPage::default());
        };
        sql.push(" AND e.event_type_id = ").bind_i64(*id);
    }
    if let Some(message_id) = &query.message_id {
        sql.push(" AND e.message_id = ").bind_text(message_id);
    }
    if let Some(start) = query.start {
        sql.push(" AND e.generated >= ").bind_i64(start);
    }
    if let Some(end) = query.end {
        sql.push(" AND e.generated <= ").bind_i64(end);
    }
    for (i, filter) in filters.iter().enumerate() {
        if Some(i) != driver {
            push_filter(&mut sql, conn, filter);
        }
    }

    let sort = effective_sort(&query.sort);
    if let Some(marker) = &query.marker {
        let position = marker_position(conn, marker, &scope)?;
        push_keyset(&mut sql, &sort, &position);
    }
    sql.push(" ORDER BY ");
    for (i, (key, dir)) in sort.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push(column(*key)).push(match dir {
            Direction::Asc => " ASC",
            Direction::Desc => " DESC",
        });
    }
    sql.push(" LIMIT ").bind_i64(i64::from(limit));

    let rows = sql.load::<EventRow>(conn)?;
    assemble(conn, &caches.names, rows)
}

/// The event with this message_id if it is within the caller's scope, as a page of one event
/// (or an empty page).
pub fn get(
    conn: &mut AnyConnection,
    caches: &ReadCaches,
    message_id: &str,
    scope: &EventScope,
) -> Result<EventPage, ApiError> {
    read_snapshot(conn, |conn| {
        let Some(scope) = resolve_scope(conn, &caches.names, scope)? else {
            return Ok(EventPage::default());
        };
        let mut sql = select_events(conn);
        sql.push(" AND e.message_id = ").bind_text(message_id);
        push_scope(&mut sql, &scope);
        let rows = sql.load::<EventRow>(conn)?;
        assemble(conn, &caches.names, rows)
    })
}

/// `SELECT … FROM events e … WHERE 1 = 1`, ready for more conditions.
fn select_events(conn: &AnyConnection) -> Sql {
    let mut sql = Sql::new(COLUMNS);
    sql.push(traits_column(conn))
        .push(" FROM events e WHERE 1 = 1");
    sql
}

/// An [`EventScope`] with its tenancy values resolved to their interned ids.
enum ScopeIds {
    All,
    /// The admin's project, if any event has it.
    AdminProject(Option<i64>),
    Member {
        project: i64,
        user: Option<i64>,
    },
}

/// Resolves the scope's tenancy values through the name cache, so that the query compares ids
/// (no subquery to plan or run). `None` when the scope cannot match any event: a member whose
/// project or user no event has.
fn resolve_scope(
    conn: &mut AnyConnection,
    names: &NameCache,
    scope: &EventScope,
) -> Result<Option<ScopeIds>, ApiError> {
    let mut id_of = |value: &str| -> Result<Option<i64>, ApiError> {
        Ok(names
            .ids(conn, NameTable::Tenants, &[value])?
            .get(value)
            .copied())
    };
    Ok(match scope {
        EventScope::All => Some(ScopeIds::All),
        EventScope::AdminProject(project) => Some(ScopeIds::AdminProject(id_of(project)?)),
        EventScope::Member {
            project_id,
            user_id,
        } => {
            let Some(project) = id_of(project_id)? else {
                return Ok(None);
            };
            let user = match user_id {
                Some(user_id) => match id_of(user_id)? {
                    Some(id) => Some(id),
                    None => return Ok(None),
                },
                None => None,
            };
            Some(ScopeIds::Member { project, user })
        }
    })
}

fn push_scope(sql: &mut Sql, scope: &ScopeIds) {
    match *scope {
        ScopeIds::All => {}
        ScopeIds::AdminProject(Some(project)) => {
            sql.push(" AND (e.project_ref = ")
                .bind_i64(project)
                .push(" OR e.project_ref IS NULL)");
        }
        ScopeIds::AdminProject(None) => {
            sql.push(" AND e.project_ref IS NULL");
        }
        ScopeIds::Member { project, user } => {
            sql.push(" AND e.project_ref = ").bind_i64(project);
            if let Some(user) = user {
                sql.push(" AND e.user_ref = ").bind_i64(user);
            }
        }
    }
}

/// Where a trait filter's values are stored.
enum Stored {
    /// A tenancy trait, kept as an indexed event column, compared with `op` other than `eq`.
    Column(&'static str),
    /// A tenancy trait equal to this interned value.
    ColumnId(&'static str, i64),
    /// A trait table and the interned name.
    Table {
        table: &'static str,
        name_id: i64,
        trait_type: TraitType,
    },
}

struct ResolvedFilter {
    stored: Stored,
    op: Op,
    value: Bind,
}

/// Resolves trait names to where they are stored. `None` when a filter names a trait that no
/// event has ever had, so nothing can match (even `ne` needs the trait to exist), or asks for a
/// tenancy value that no event has.
fn resolve_trait_filters(
    conn: &mut AnyConnection,
    names: &NameCache,
    query: &EventQuery,
) -> Result<Option<Vec<ResolvedFilter>>, ApiError> {
    let wanted: Vec<&str> = query
        .traits
        .iter()
        .filter(|f| !is_tenancy_trait(&f.name, f.value.trait_type()))
        .map(|f| f.name.as_str())
        .collect();
    let name_ids = if wanted.is_empty() {
        HashMap::new()
    } else {
        names.ids(conn, NameTable::TraitNames, &wanted)?
    };
    let mut resolved = Vec::with_capacity(query.traits.len());
    for filter in &query.traits {
        let trait_type = filter.value.trait_type();
        let stored = if is_tenancy_trait(&filter.name, trait_type) {
            let column = if filter.name == "project_id" {
                "e.project_ref"
            } else {
                "e.user_ref"
            };
            match (&filter.value, filter.op) {
                (TraitValue::String(value), Op::Eq) => {
                    let ids = names.ids(conn, NameTable::Tenants, &[value.as_str()])?;
                    let Some(&id) = ids.get(value.as_str()) else {
                        return Ok(None);
                    };
                    Stored::ColumnId(column, id)
                }
                _ => Stored::Column(column),
            }
        } else {
            let Some(&name_id) = name_ids.get(&filter.name) else {
                return Ok(None);
            };
            Stored::Table {
                table: trait_table(trait_type),
                name_id,
                trait_type,
            }
        };
        resolved.push(ResolvedFilter {
            stored,
            op: filter.op,
            value: bind_value(&filter.value),
        });
    }
    Ok(Some(resolved))
}

/// Picks the trait filter, if any, that should drive the query.
///
/// By default events are read in sort order and each trait filter is checked by a primary-key
/// probe: fast when the filters match many events, since a page fills quickly. A filter that
/// matches few events (a resource id, a rare state) would make that scan read most of the store,
/// so the query starts from its (name, value) index instead and sorts the few matches. A capped
/// count on the index tells the two cases apart cheaply. Neither backend's planner makes this
/// choice reliably with LIMIT, so it is made here.
fn choose_driver(
    conn: &mut AnyConnection,
    plans: &PlanCache,
    filters: &[ResolvedFilter],
    limit: u32,
) -> Result<Option<usize>, ApiError> {
    let cap = DRIVER_CAP.max(2 * i64::from(limit));
    let mut best: Option<(usize, i64)> = None;
    for (i, f) in filters.iter().enumerate() {
        if f.op == Op::Ne || !matches!(f.stored, Stored::Table { .. }) {
            continue;
        }
        let mut sql = Sql::new("SELECT COUNT(*) AS n FROM (SELECT x.event_id FROM ");
        push_index_condition(&mut sql, f);
        sql.push(" LIMIT ").bind_i64(cap).push(") c");
        let key = format!("{} {:?} {cap}", sql.text(), f.value);
        let n = match plans.get(&key) {
            Some(n) => n,
            None => {
                let n = sql.load::<Count>(conn)?.first().map_or(0, |c| c.n);
                plans.put(key, n);
                n
            }
        };
        if n < cap && best.is_none_or(|(_, m)| n < m) {
            best = Some((i, n));
        }
    }
    Ok(best.map(|(i, _)| i))
}

/// `<table> x WHERE x.name_id = ? AND x.value <op> ?` for a trait-table filter.
fn push_index_condition(sql: &mut Sql, f: &ResolvedFilter) {
    if let Stored::Table { table, name_id, .. } = f.stored {
        sql.push(table)
            .push(" x WHERE x.name_id = ")
            .bind_i64(name_id)
            .push(&format!(" AND x.value {} ", op_sql(f.op)))
            .bind(f.value.clone());
    }
}

/// The filter as a condition on the event `e`.
fn push_filter(sql: &mut Sql, conn: &AnyConnection, f: &ResolvedFilter) {
    let op = op_sql(f.op);
    match f.stored {
        // NULL (no such trait) never compares true, as in Panko. Equality was resolved to the
        // value's id; other comparisons are on the values, through the (small) tenants table.
        Stored::ColumnId(column, id) => {
            sql.push(&format!(" AND {column} = ")).bind_i64(id);
        }
        Stored::Column(column) => {
            sql.push(&format!(
                " AND {column} IN (SELECT id FROM tenants WHERE name {op} "
            ))
            .bind(f.value.clone())
            .push(")");
        }
        Stored::Table {
            table,
            name_id,
            trait_type,
        } => {
            sql.push(" AND ");
            push_trait_value(sql, conn, table, name_id, trait_type);
            sql.push(&format!(" {op} ")).bind(f.value.clone());
        }
    }
}

/// The event's value of one trait (NULL when it lacks the trait, which never compares true), read
/// from the row's copy of its traits where the backend keeps this type there: the probes of a
/// trait table were nearly all of a many-match filter's work, and the scan reads the row anyway.
/// - PostgreSQL: every type, from the `jsonb` document (`store::trait_doc`), which every row has
///   (its trait tables have no key to probe: migration `unkeyed_trait_rows`), with the trait
///   table's comparison: numbers cast exactly, strings in the "C" collation of the value column.
/// - SQLite: integers, floats and datetimes, from the `numbers` BLOB through a SQL function that
///   returns the value with the trait table's SQL type (`store::trait_numbers`), and probed in the
///   trait table's key for rows stored before the BLOB existed (NULL); strings are probed.
fn push_trait_value(
    sql: &mut Sql,
    conn: &AnyConnection,
    table: &str,
    name_id: i64,
    trait_type: TraitType,
) {
    match conn {
        AnyConnection::Postgresql(_) => {
            let (get, cast) = match trait_type {
                TraitType::String => ("->>", "TEXT) COLLATE \"C\""),
                TraitType::Float => ("->", "FLOAT8)"),
                TraitType::Integer | TraitType::Datetime => ("->", "BIGINT)"),
            };
            sql.push(&format!(
                "CAST(e.traits -> '{}' {get} ",
                trait_doc::type_key(trait_type)
            ))
            .bind(Bind::Text(name_id.to_string()))
            .push(&format!(" AS {cast}"));
        }
        AnyConnection::Sqlite(_) => match trait_numbers::sql_function(trait_type) {
            Some(function) => {
                sql.push("(CASE WHEN e.numbers IS NULL THEN ");
                push_probe(sql, table, name_id);
                sql.push(&format!(" ELSE {function}(e.numbers, "))
                    .bind_i64(name_id)
                    .push(") END)");
            }
            None => push_probe(sql, table, name_id),
        },
    }
}

/// `(SELECT x.value FROM <table> x WHERE x.event_id = e.id AND x.name_id = ?)`: the event's
/// value of one trait, by the trait table's primary key (SQLite only: PostgreSQL's trait tables
/// have none). A scalar subquery, not `EXISTS`: the key makes it one probe returning at most one
/// value (NULL when the event lacks the trait).
fn push_probe(sql: &mut Sql, table: &str, name_id: i64) {
    sql.push(&format!(
        "(SELECT x.value FROM {table} x WHERE x.event_id = e.id AND x.name_id = "
    ))
    .bind_i64(name_id)
    .push(")");
}

/// The sort-key values of the marker event. The marker must be visible to the caller: another
/// tenant's message_id is "not found", so markers cannot probe for other tenants' events.
fn marker_position(
    conn: &mut AnyConnection,
    marker: &str,
    scope: &ScopeIds,
) -> Result<MarkerRow, ApiError> {
    let mut sql = Sql::new(
        "SELECT e.generated AS generated, e.message_id AS message_id FROM events e WHERE e.message_id = ",
    );
    sql.bind_text(marker);
    push_scope(&mut sql, scope);
    sql.load::<MarkerRow>(conn)?
        .pop()
        .ok_or_else(|| marker_not_found(marker))
}

fn marker_not_found(marker: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Marker {marker} not found. A marker is the message_id of the last event of the \
         previous page, sent again with the same q, sort and limit."
    ))
}

fn column(key: SortKey) -> &'static str {
    match key {
        SortKey::Generated => "e.generated",
        SortKey::MessageId => "e.message_id",
    }
}

fn marker_value(key: SortKey, marker: &MarkerRow) -> Bind {
    match key {
        SortKey::Generated => Bind::BigInt(marker.generated),
        SortKey::MessageId => Bind::Text(marker.message_id.clone()),
    }
}

/// Rows strictly after the marker in the sort order.
fn push_keyset(sql: &mut Sql, sort: &[(SortKey, Direction)], marker: &MarkerRow) {
    let cmp = |dir: Direction| match dir {
        Direction::Asc => ">",
        Direction::Desc => "<",
    };
    // One direction for all keys: a row-value comparison, which both backends serve from the
    // (generated, message_id) index.
    if sort.iter().all(|(_, d)| *d == sort[0].1) {
        let columns: Vec<&str> = sort.iter().map(|(k, _)| column(*k)).collect();
        sql.push(&format!(
            " AND ({}) {} (",
            columns.join(", "),
            cmp(sort[0].1)
        ));
        for (i, (key, _)) in sort.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(marker_value(*key, marker));
        }
        sql.push(")");
        return;
    }
    // Mixed directions: (k1 > v1) OR (k1 = v1 AND k2 < v2) OR …
    sql.push(" AND (");
    for i in 0..sort.len() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push("(");
        for (key, _) in &sort[..i] {
            sql.push(column(*key))
                .push(" = ")
                .bind(marker_value(*key, marker))
                .push(" AND ");
        }
        let (key, dir) = sort[i];
        sql.push(column(key))
            .push(&format!(" {} ", cmp(dir)))
            .bind(marker_value(key, marker))
            .push(")");
    }
    sql.push(")");
}

/// Loads the traits of the given event rows ([`page_traits`]), resolves names through the cache,
/// and assembles the page.
fn assemble(
    conn: &mut AnyConnection,
    names: &NameCache,
    rows: Vec<EventRow>,
) -> Result<EventPage, ApiError> {
    if rows.is_empty() {
        return Ok(EventPage::default());
    }
    let traits = page_traits::load(conn, &rows)?;

    let type_names = names.names(
        conn,
        NameTable::EventTypes,
        rows.iter().map(|r| r.event_type_id),
    )?;
    let trait_names = names.names(
        conn,
        NameTable::TraitNames,
        traits.iter().map(|(_, name_id, _)| *name_id),
    )?;
    let tenants = names.names(
        conn,
        NameTable::Tenants,
        rows.iter()
            .flat_map(|r| [r.project_ref, r.user_ref])
            .flatten(),
    )?;

    // The page's name table: each event type and trait name once, plus the tenancy trait names.
    let mut page = EventPage::default();
    // Appends names to the page's table; returns each id's index there.
    let mut add_names = |names: FxHashMap<i64, Arc<str>>| -> FxHashMap<i64, u32> {
        names
            .into_iter()
            .map(|(id, name)| {
                page.names.push(name);
                (id, page.names.len() as u32 - 1)
            })
            .collect()
    };
    let index_of_type = add_names(type_names);
    let index_of_trait = add_names(trait_names);
    let mut tenancy_index = [0u32; 2];
    for (slot, name) in tenancy_index.iter_mut().zip(TENANCY_TRAITS) {
        *slot = page.names.len() as u32;
        page.names.push(Arc::from(name));
    }

    // Each name's position in byte order, so that traits sort by name with integer compares.
    let mut by_name: Vec<u32> = (0..page.names.len() as u32).collect();
    by_name.sort_unstable_by(|a, b| page.name(*a).cmp(page.name(*b)));
    // Equal names (a trait named like a tenancy trait, of another type) share a rank, so that
    // they sort by type.
    let mut rank = vec![0u32; by_name.len()];
    for (position, pair) in by_name.windows(2).enumerate() {
        rank[pair[1] as usize] = if page.name(pair[0]) == page.name(pair[1]) {
            rank[pair[0] as usize]
        } else {
            position as u32 + 1
        };
    }

    let missing =
        |what: &str, id: i64| ApiError::internal(anyhow::anyhow!("{what} {id} has no name"));
    let mut by_event: FxHashMap<i64, Vec<(u32, TraitValue)>> = FxHashMap::default();
    for (event_id, name_id, value) in traits {
        let index = *index_of_trait
            .get(&name_id)
            .ok_or_else(|| missing("trait name", name_id))?;
        by_event.entry(event_id).or_default().push((index, value));
    }

    page.events.reserve(rows.len());
    for row in rows {
        let mut event_traits = by_event.remove(&row.id).unwrap_or_default();
        for (index, value) in tenancy_index
            .into_iter()
            .zip([row.project_ref, row.user_ref])
        {
            if let Some(id) = value {
                let value = tenants.get(&id).ok_or_else(|| missing("tenant", id))?;
                event_traits.push((index, TraitValue::String(value.to_string())));
            }
        }
        event_traits
            .sort_unstable_by_key(|(name, value)| (rank[*name as usize], value.trait_type()));
        let event_type = *index_of_type
            .get(&row.event_type_id)
            .ok_or_else(|| missing("event type", row.event_type_id))?;
        page.events.push(PageEvent {
            message_id: row.message_id,
            event_type,
            generated: row.generated,
            traits: event_traits,
            raw: row.raw,
        });
    }
    Ok(page)
}
