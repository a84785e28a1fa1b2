ALTER TABLE traits_datetime RESET (autovacuum_vacuum_insert_scale_factor, autovacuum_vacuum_insert_threshold);
ALTER TABLE traits_float RESET (autovacuum_vacuum_insert_scale_factor, autovacuum_vacuum_insert_threshold);
ALTER TABLE traits_integer RESET (autovacuum_vacuum_insert_scale_factor, autovacuum_vacuum_insert_threshold);
ALTER TABLE traits_string RESET (autovacuum_vacuum_insert_scale_factor, autovacuum_vacuum_insert_threshold);

ALTER TABLE traits_datetime
    DROP CONSTRAINT traits_datetime_pkey,
    ADD CONSTRAINT traits_datetime_pkey PRIMARY KEY (event_id, name_id);
ALTER TABLE traits_float
    DROP CONSTRAINT traits_float_pkey,
    ADD CONSTRAINT traits_float_pkey PRIMARY KEY (event_id, name_id);
ALTER TABLE traits_integer
    DROP CONSTRAINT traits_integer_pkey,
    ADD CONSTRAINT traits_integer_pkey PRIMARY KEY (event_id, name_id);
ALTER TABLE traits_string
    DROP CONSTRAINT traits_string_pkey,
    ADD CONSTRAINT traits_string_pkey PRIMARY KEY (event_id, name_id);
