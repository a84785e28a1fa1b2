-- The trait document in each event row (`store::trait_doc`) becomes `jsonb`, one object per
-- trait type keyed by name id (`{"i": {"7": 512}, …}`), so that a trait filter looks the value
-- up in the row it is already reading (`traits->'i'->'7'`) instead of probing a trait table's
-- primary key for every event it scans. The probes were 98% of the buffers read by a page with
-- two filters that match many events; under pgbench at 1M events that statement ran 1,690 times
-- a second with probes and 5,250 with lookups (docs/PERFORMANCE.md, session 9). A filter that
-- matches few events still starts from its trait table's index.
--
-- The text documents of the `event_trait_documents` format are dropped rather than converted,
-- which rewrites nothing and so is instant on a large store: rows stored before this migration
-- have no document, and their traits are read and filtered from the trait tables as before.
ALTER TABLE events DROP COLUMN traits;
ALTER TABLE events ADD COLUMN traits JSONB;
