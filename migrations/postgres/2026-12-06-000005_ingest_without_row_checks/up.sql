-- PostgreSQL checks a foreign key on every inserted row: a query of the referenced table that
-- also locks the referenced row (`FOR KEY SHARE`). At ingest that was about eleven checks an
-- event: its event type and both tenancy names, and the event itself once per trait row. The
-- name rows are shared by every event, so two writers locking the same row turned the lock into
-- a multixact. The ingest writer never needs them: it writes only ids it has read or created
-- itself in the same transaction (interned names, which are never deleted, and the ids the
-- insert of the events returned), the same reason its SQLite connection leaves foreign keys
-- unchecked (`store::writer::open`). Tests check after ingest that no reference dangles.
--
-- What the trait tables' foreign keys also did, deleting an event's traits with the event, is
-- kept by one statement-level trigger: deleting events, by Almanac or by hand, deletes their
-- trait rows in the same statement, set-wise, through the trait tables' primary keys.
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_event_type_id_fkey;
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_project_ref_fkey;
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_user_ref_fkey;
ALTER TABLE traits_string DROP CONSTRAINT IF EXISTS traits_string_event_id_fkey;
ALTER TABLE traits_integer DROP CONSTRAINT IF EXISTS traits_integer_event_id_fkey;
ALTER TABLE traits_float DROP CONSTRAINT IF EXISTS traits_float_event_id_fkey;
ALTER TABLE traits_datetime DROP CONSTRAINT IF EXISTS traits_datetime_event_id_fkey;

CREATE FUNCTION almanac_delete_event_traits() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM traits_string WHERE event_id IN (SELECT id FROM deleted_events);
    DELETE FROM traits_integer WHERE event_id IN (SELECT id FROM deleted_events);
    DELETE FROM traits_float WHERE event_id IN (SELECT id FROM deleted_events);
    DELETE FROM traits_datetime WHERE event_id IN (SELECT id FROM deleted_events);
    RETURN NULL;
END
$$;

CREATE TRIGGER events_delete_traits AFTER DELETE ON events
    REFERENCING OLD TABLE AS deleted_events
    FOR EACH STATEMENT EXECUTE FUNCTION almanac_delete_event_traits();
