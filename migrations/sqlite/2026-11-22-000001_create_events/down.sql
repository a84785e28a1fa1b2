DROP TABLE event_type_traits;
DROP TABLE traits_datetime;
DROP TABLE traits_float;
DROP TABLE traits_integer;
DROP TABLE traits_string;
DROP TABLE events;
DROP TABLE trait_names;
DROP TABLE event_types;
