-- Nothing to do on SQLite: its trait tables are WITHOUT ROWID, so the primary key's B-tree
-- already holds the value, which is what this migration gives PostgreSQL's trait tables.
-- Kept so that both trees carry the same migrations.
SELECT 1;
