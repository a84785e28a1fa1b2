-- Each event row also carries its traits (all but the tenancy traits, which are columns), as a
-- small JSON document written at ingest (`store::trait_doc`), so that a page of events is one
-- read of its event rows. The typed trait tables stay the only thing filters read, through
-- their indexes; this column is a copy for output only and is never queried.
--
-- Why: reading a 100-event page's ~700 trait rows from the four trait tables was about three
-- quarters of PostgreSQL's work for a list request (pgbench at 1M events: the trait statement
-- ~2,800/s against ~8,200/s for the page's event rows; docs/PERFORMANCE.md, session 8).
--
-- Rows stored before this migration keep NULL, and their traits are read from the trait
-- tables as before: adding a nullable column rewrites nothing, so the migration is instant on
-- a large store.
ALTER TABLE events ADD COLUMN traits TEXT;

