//! A small SQL builder for the queries whose shape depends on the request (trait filters, sort,
//! markers, scoping). It writes the same SQL for both backends: binds are emitted through diesel,
//! which renders each backend's placeholder (`?` or `$n`), so no SQL text here is backend-specific
//! (except [`Bind::Jsonb`], which only PostgreSQL has).

use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Binary, Double, Nullable, Text, Untyped};
use diesel::{QueryResult, RunQueryDsl};

use super::{AnyConnection, MultiBackend};

/// A bound value.
#[derive(Clone, Debug, PartialEq)]
pub enum Bind {
    Text(String),
    BigInt(i64),
    NullableBigInt(Option<i64>),
    Double(f64),
    /// JSON text for a `jsonb` column (PostgreSQL only): bound as text, `CAST(? AS JSONB)`.
    Jsonb(String),
    /// Bytes for a BLOB column (SQLite only: `store::trait_numbers`).
    Blob(Vec<u8>),
}

#[derive(Clone, Debug)]
enum Part {
    Sql(String),
    Bind(Bind),
}

/// SQL text with interleaved binds, loadable into any `QueryableByName` row type.
#[derive(Clone, Debug, Default)]
pub struct Sql {
    parts: Vec<Part>,
    /// Run once without keeping the prepared statement (see [`Sql::uncached`]).
    uncached: bool,
}

impl Sql {
    pub fn new(sql: &str) -> Sql {
        Sql {
            parts: vec![Part::Sql(sql.to_string())],
            uncached: false,
        }
    }

    /// Prepares the statement for this execution only, instead of keeping it in the
    /// connection's statement cache (and, on PostgreSQL, as a server-side prepared statement).
    /// For statements whose text varies with the data, such as a multi-row insert of a partial
    /// chunk: kept, every row count seen would stay prepared on every connection, a
    /// prepared multi-row insert holding its whole program (RSS grew by ~100 MiB over a 1M-event
    /// load).
    pub fn uncached(&mut self) -> &mut Sql {
        self.uncached = true;
        self
    }

    /// Appends SQL text.
    pub fn push(&mut self, sql: &str) -> &mut Sql {
        match self.parts.last_mut() {
            Some(Part::Sql(s)) => s.push_str(sql),
            _ => self.parts.push(Part::Sql(sql.to_string())),
        }
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: Bind) -> &mut Sql {
        self.parts.push(Part::Bind(value));
        self
    }

    pub fn bind_text(&mut self, value: &str) -> &mut Sql {
        self.bind(Bind::Text(value.to_string()))
    }

    pub fn bind_i64(&mut self, value: i64) -> &mut Sql {
        self.bind(Bind::BigInt(value))
    }

    /// Appends `(?, ?, …), (?, ?, …), …`: one parenthesized row of placeholders per item, for
    /// a multi-row `VALUES` list or a row-value `IN` list.
    pub fn push_rows<const N: usize>(
        &mut self,
        rows: impl IntoIterator<Item = [Bind; N]>,
    ) -> &mut Sql {
        for (i, row) in rows.into_iter().enumerate() {
            self.push(if i == 0 { "(" } else { ", (" });
            for (j, value) in row.into_iter().enumerate() {
                if j > 0 {
                    self.push(", ");
                }
                self.bind(value);
            }
            self.push(")");
        }
        self
    }

    /// Appends `(?, ?, …)` for a non-empty list. The list is padded (repeating its last value,
    /// which changes nothing in an `IN`) to a power of two of at least 8 entries, so that only a
    /// few statement shapes exist and each is prepared once and cached.
    pub fn bind_list<I: IntoIterator<Item = Bind>>(&mut self, values: I) -> &mut Sql {
        let values: Vec<Bind> = values.into_iter().collect();
        if values.is_empty() {
            return self.push("(NULL)"); // matches nothing
        }
        let padded = values.len().next_power_of_two().max(8);
        self.push("(");
        for i in 0..padded {
            if i > 0 {
                self.push(", ");
            }
            let value = values.get(i).unwrap_or(&values[values.len() - 1]);
            self.bind(value.clone());
        }
        self.push(")")
    }

    /// The SQL text with `?` for binds (for logs and tests).
    pub fn text(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Sql(s) => s.as_str(),
                Part::Bind(Bind::Jsonb(_)) => "CAST(? AS JSONB)",
                Part::Bind(_) => "?",
            })
            .collect()
    }
}

impl QueryFragment<MultiBackend> for Sql {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        if self.uncached {
            out.unsafe_to_cache_prepared();
        }
        for part in &self.parts {
            match part {
                Part::Sql(s) => out.push_sql(s),
                Part::Bind(Bind::Text(v)) => out.push_bind_param::<Text, _>(v)?,
                Part::Bind(Bind::BigInt(v)) => out.push_bind_param::<BigInt, _>(v)?,
                Part::Bind(Bind::NullableBigInt(v)) => {
                    out.push_bind_param::<Nullable<BigInt>, _>(v)?
                }
                Part::Bind(Bind::Double(v)) => out.push_bind_param::<Double, _>(v)?,
                Part::Bind(Bind::Blob(v)) => out.push_bind_param::<Binary, _>(v)?,
                Part::Bind(Bind::Jsonb(v)) => {
                    out.push_sql("CAST(");
                    out.push_bind_param::<Text, _>(v)?;
                    out.push_sql(" AS JSONB)");
                }
            }
        }
        Ok(())
    }
}

impl QueryId for Sql {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Sql {
    type SqlType = Untyped;
}

impl RunQueryDsl<AnyConnection> for Sql {}

/// [`Sql`] whose columns are read by position as the SQL types `ST`, into tuples: no lookup of
/// each column by name for each row, which named rows (`QueryableByName`) pay.
pub struct TypedSql<ST> {
    sql: Sql,
    columns: std::marker::PhantomData<ST>,
}

impl Sql {
    /// The same query, read by position as `ST` (a tuple of SQL types, one per column).
    pub fn typed<ST>(self) -> TypedSql<ST> {
        TypedSql {
            sql: self,
            columns: std::marker::PhantomData,
        }
    }
}

impl<ST> QueryFragment<MultiBackend> for TypedSql<ST> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        self.sql.walk_ast(out)
    }
}

impl<ST> QueryId for TypedSql<ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST: 'static> Query for TypedSql<ST> {
    type SqlType = ST;
}

impl<ST> RunQueryDsl<AnyConnection> for TypedSql<ST> {}

#[cfg(test)]
mod tests {
    use super::{Bind, Sql};

    #[test]
    fn push_rows_writes_one_parenthesized_row_per_item() {
        let mut sql = Sql::new("INSERT INTO t (a, b) VALUES ");
        sql.push_rows([
            [Bind::BigInt(1), Bind::Text("x".into())],
            [Bind::BigInt(2), Bind::NullableBigInt(None)],
        ]);
        assert_eq!(sql.text(), "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)");
        let mut one = Sql::new("");
        one.push_rows([[Bind::Double(0.5)]]);
        assert_eq!(one.text(), "(?)");
    }

    #[test]
    fn a_jsonb_value_is_bound_as_text_and_cast() {
        let mut sql = Sql::new("INSERT INTO t (a, doc) VALUES ");
        sql.push_rows([[Bind::BigInt(1), Bind::Jsonb("{}".into())]]);
        assert_eq!(
            sql.text(),
            "INSERT INTO t (a, doc) VALUES (?, CAST(? AS JSONB))"
        );
    }
}
