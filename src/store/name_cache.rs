//! An in-process cache of interned names (event types, trait names, tenancy values), so that
//! reading a page does not join or look up the name tables for every row.
//!
//! Interned rows are append-only: a name's id never changes and a row is never deleted, so a
//! pair read once from committed data stays true, in this process and across processes sharing
//! one PostgreSQL. Only names that exist are cached: a name unknown here may be interned by the
//! next commit, of this process or another, and must be looked up again then.

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::sync::{Arc, RwLock};

use super::names::{self, NameTable};
use crate::db::AnyConnection;
use crate::error::ApiError;

/// Entries kept per table at most. Past it, further names are looked up in the database each
/// time: memory stays bounded however many tenants or trait names a store holds.
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
struct Entries {
    /// Ids are the database's, so a fast non-keyed hash is safe for them.
    by_id: FxHashMap<i64, Arc<str>>,
    /// Names come from clients: the default keyed hash keeps crafted collisions out.
    by_name: HashMap<Arc<str>, i64>,
}

impl Entries {
    fn insert(&mut self, id: i64, name: &str) -> Arc<str> {
        if let Some(known) = self.by_id.get(&id) {
            return known.clone();
        }
        let name: Arc<str> = Arc::from(name);
        if self.by_id.len() < MAX_ENTRIES {
            self.by_id.insert(id, name.clone());
            self.by_name.insert(name.clone(), id);
        }
        name
    }
}

/// One cache per name table.
#[derive(Default)]
pub struct NameCache {
    event_types: RwLock<Entries>,
    trait_names: RwLock<Entries>,
    tenants: RwLock<Entries>,
}

impl NameCache {
    fn entries(&self, table: NameTable) -> &RwLock<Entries> {
        match table {
            NameTable::EventTypes => &self.event_types,
            NameTable::TraitNames => &self.trait_names,
            NameTable::Tenants => &self.tenants,
        }
    }

    /// Ids of the names that exist; absent names are missing from the map.
    pub fn ids(
        &self,
        conn: &mut AnyConnection,
        table: NameTable,
        wanted: &[&str],
    ) -> Result<HashMap<String, i64>, ApiError> {
        let mut found = HashMap::with_capacity(wanted.len());
        let mut missing = Vec::new();
        {
            let entries = read(self.entries(table));
            for &name in wanted {
                match entries.by_name.get(name) {
                    Some(&id) => {
                        found.insert(name.to_string(), id);
                    }
                    None => missing.push(name),
                }
            }
        }
        if !missing.is_empty() {
            let looked_up = names::lookup(conn, table, &missing)?;
            let mut entries = write(self.entries(table));
            for (name, &id) in &looked_up {
                entries.insert(id, name);
            }
            found.extend(looked_up);
        }
        Ok(found)
    }

    /// The names of these ids. An id with no row is missing from the map.
    pub fn names(
        &self,
        conn: &mut AnyConnection,
        table: NameTable,
        ids: impl IntoIterator<Item = i64>,
    ) -> Result<FxHashMap<i64, Arc<str>>, ApiError> {
        let mut found = FxHashMap::default();
        let mut missing = Vec::new();
        {
            let entries = read(self.entries(table));
            for id in ids {
                if found.contains_key(&id) {
                    continue;
                }
                match entries.by_id.get(&id) {
                    Some(name) => {
                        found.insert(id, name.clone());
                    }
                    None => missing.push(id),
                }
            }
        }
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            let looked_up = names::values_of(conn, table, &missing)?;
            let mut entries = write(self.entries(table));
            for (id, name) in looked_up {
                let name = entries.insert(id, &name);
                found.insert(id, name);
            }
        }
        Ok(found)
    }
}

// A panic while holding the lock cannot leave the maps inconsistent (each insert is one pair),
// so a poisoned lock is used as it is.
fn read(lock: &RwLock<Entries>) -> std::sync::RwLockReadGuard<'_, Entries> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write(lock: &RwLock<Entries>) -> std::sync::RwLockWriteGuard<'_, Entries> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}
