-- Interned names: events and traits carry small integer ids instead of repeated strings.
CREATE TABLE event_types (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE trait_names (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

-- Project and user ids (the tenancy traits' values), interned: a deployment has few tenants,
-- and their 32-hex-digit ids would otherwise be repeated in every event and two indexes.
CREATE TABLE tenants (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

-- generated is microseconds since the epoch (UTC). project_ref and user_ref are the event's
-- string traits project_id and user_id (interned in tenants), kept here and only here because
-- tenant scoping filters on them.
CREATE TABLE events (
    id            INTEGER PRIMARY KEY,
    message_id    TEXT    NOT NULL,
    event_type_id INTEGER NOT NULL REFERENCES event_types (id),
    generated     BIGINT  NOT NULL,
    project_ref   INTEGER REFERENCES tenants (id),
    user_ref      INTEGER REFERENCES tenants (id),
    raw           TEXT    NOT NULL
);

CREATE UNIQUE INDEX events_message_id ON events (message_id);
-- The default sort and the keyset marker. message_id, the tiebreaker, is not in these indexes:
-- ties on a microsecond are rare, and both backends sort a run of equal keys incrementally,
-- while 36 more bytes in four indexes would be a third of the store.
CREATE INDEX events_generated ON events (generated);
CREATE INDEX events_type_generated ON events (event_type_id, generated);
-- Admin project scope and project_id filters; member scope (project and user).
CREATE INDEX events_project_generated ON events (project_ref, generated);
CREATE INDEX events_project_user_generated ON events (project_ref, user_ref, generated);

-- One table per trait type. The primary key (event_id, name_id) holds the value (WITHOUT ROWID:
-- no separate row store), and the (name_id, value, event_id) index makes filters index lookups.
CREATE TABLE traits_string (
    event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    name_id  INTEGER NOT NULL,
    value    TEXT    NOT NULL,
    PRIMARY KEY (event_id, name_id)
) WITHOUT ROWID;
CREATE INDEX traits_string_lookup ON traits_string (name_id, value, event_id);

CREATE TABLE traits_integer (
    event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    name_id  INTEGER NOT NULL,
    value    BIGINT  NOT NULL,
    PRIMARY KEY (event_id, name_id)
) WITHOUT ROWID;
CREATE INDEX traits_integer_lookup ON traits_integer (name_id, value, event_id);

CREATE TABLE traits_float (
    event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    name_id  INTEGER NOT NULL,
    value    REAL    NOT NULL,
    PRIMARY KEY (event_id, name_id)
) WITHOUT ROWID;
CREATE INDEX traits_float_lookup ON traits_float (name_id, value, event_id);

CREATE TABLE traits_datetime (
    event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    name_id  INTEGER NOT NULL,
    value    BIGINT  NOT NULL,
    PRIMARY KEY (event_id, name_id)
) WITHOUT ROWID;
CREATE INDEX traits_datetime_lookup ON traits_datetime (name_id, value, event_id);

-- The (name, type) pairs seen on each event type, maintained at ingest.
CREATE TABLE event_type_traits (
    event_type_id INTEGER  NOT NULL REFERENCES event_types (id),
    name_id       INTEGER  NOT NULL REFERENCES trait_names (id),
    dtype         SMALLINT NOT NULL,
    PRIMARY KEY (event_type_id, name_id, dtype)
) WITHOUT ROWID;
