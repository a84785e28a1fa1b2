-- PostgreSQL's trait tables lose their primary keys: they only ever served reads of one event's
-- traits, and every event now carries its traits in its row (`events.traits`, `store::trait_doc`),
-- which pages, single events and filters read instead. What stays is what filters need, each
-- table's (name_id, value, event_id) index, and a BRIN index on event_id, for deleting an event's
-- trait rows (the `events_delete_traits` trigger), which costs next to nothing to keep up: trait
-- rows are written in event-id order.
--
-- Why: a key entry (event_id, name_id, value) per trait row was a third of the index entries that
-- ingest writes. Measured at 1M events in alternating runs (docs/PERFORMANCE.md, session 12):
-- ingest 11,255-11,965 -> 12,198-13,163 events/s, PostgreSQL's CPU 117-121 -> 103-114 us/event
-- (it is the bound of ingest there), storage 2,334 -> 1,889 bytes/event.
--
-- Rows stored before the `keyed_trait_documents` migration have no document: they get one here,
-- built from their trait rows in the shape ingest writes, so that no read needs the keys; the
-- column is then NOT NULL. On a large store of such rows this rewrites them, once.
-- (Ingest refuses two traits with the same name and type in one event, which the keys also
-- refused, so no duplicate can appear without them.)
UPDATE events e SET traits = jsonb_strip_nulls(jsonb_build_object(
    's', (SELECT jsonb_object_agg(x.name_id::TEXT, x.value) FROM traits_string x WHERE x.event_id = e.id),
    'i', (SELECT jsonb_object_agg(x.name_id::TEXT, x.value) FROM traits_integer x WHERE x.event_id = e.id),
    'f', (SELECT jsonb_object_agg(x.name_id::TEXT, x.value) FROM traits_float x WHERE x.event_id = e.id),
    'd', (SELECT jsonb_object_agg(x.name_id::TEXT, x.value) FROM traits_datetime x WHERE x.event_id = e.id)
))
WHERE e.traits IS NULL;
ALTER TABLE events ALTER COLUMN traits SET NOT NULL;

ALTER TABLE traits_string DROP CONSTRAINT traits_string_pkey;
ALTER TABLE traits_integer DROP CONSTRAINT traits_integer_pkey;
ALTER TABLE traits_float DROP CONSTRAINT traits_float_pkey;
ALTER TABLE traits_datetime DROP CONSTRAINT traits_datetime_pkey;
CREATE INDEX traits_string_event ON traits_string USING brin (event_id);
CREATE INDEX traits_integer_event ON traits_integer USING brin (event_id);
CREATE INDEX traits_float_event ON traits_float USING brin (event_id);
CREATE INDEX traits_datetime_event ON traits_datetime USING brin (event_id);
