-- Each trait table's primary key (event_id, name_id) also carries the value (INCLUDE), so the
-- two reads that dominate list queries are index-only scans: a trait filter's probe for one
-- event, and the read of a page's traits. Both otherwise fetch a heap tuple per trait.
-- Measured at 1M events (docs/PERFORMANCE.md): PostgreSQL work per query-3 request -13%.
--
-- Index-only scans skip the heap only on pages the visibility map marks all-visible, which
-- VACUUM sets. Trait tables are insert-mostly, and by default autovacuum vacuums such a table
-- after inserts of 20% of its size: on a large store, the newest fifth, which dashboards read
-- most, would never be all-visible. These tables are vacuumed after every 100,000 inserted
-- rows instead (a vacuum of pages that were only inserted into is cheap: no index is scanned).
--
-- Rebuilding a primary key takes an exclusive lock on the table for the rebuild.
ALTER TABLE traits_string
    DROP CONSTRAINT traits_string_pkey,
    ADD CONSTRAINT traits_string_pkey PRIMARY KEY (event_id, name_id) INCLUDE (value);
ALTER TABLE traits_integer
    DROP CONSTRAINT traits_integer_pkey,
    ADD CONSTRAINT traits_integer_pkey PRIMARY KEY (event_id, name_id) INCLUDE (value);
ALTER TABLE traits_float
    DROP CONSTRAINT traits_float_pkey,
    ADD CONSTRAINT traits_float_pkey PRIMARY KEY (event_id, name_id) INCLUDE (value);
ALTER TABLE traits_datetime
    DROP CONSTRAINT traits_datetime_pkey,
    ADD CONSTRAINT traits_datetime_pkey PRIMARY KEY (event_id, name_id) INCLUDE (value);

ALTER TABLE traits_string SET (autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 100000);
ALTER TABLE traits_integer SET (autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 100000);
ALTER TABLE traits_float SET (autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 100000);
ALTER TABLE traits_datetime SET (autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 100000);
