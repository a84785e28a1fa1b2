DROP INDEX traits_datetime_event;
DROP INDEX traits_float_event;
DROP INDEX traits_integer_event;
DROP INDEX traits_string_event;
ALTER TABLE traits_datetime ADD CONSTRAINT traits_datetime_pkey PRIMARY KEY (event_id, name_id) INCLUDE (value);
ALTER TABLE traits_float ADD CONSTRAINT traits_float_pkey PRIMARY KEY (event_id, name_id) INCLUDE (value);
ALTER TABLE traits_integer ADD CONSTRAINT traits_integer_pkey PRIMARY KEY (event_id, name_id) INCLUDE (value);
ALTER TABLE traits_string ADD CONSTRAINT traits_string_pkey PRIMARY KEY (event_id, name_id) INCLUDE (value);
-- The documents stay: rows with one read the same with or without the keys.
ALTER TABLE events ALTER COLUMN traits DROP NOT NULL;
