DROP TRIGGER events_delete_traits ON events;
DROP FUNCTION almanac_delete_event_traits();
ALTER TABLE traits_datetime ADD FOREIGN KEY (event_id) REFERENCES events (id) ON DELETE CASCADE;
ALTER TABLE traits_float ADD FOREIGN KEY (event_id) REFERENCES events (id) ON DELETE CASCADE;
ALTER TABLE traits_integer ADD FOREIGN KEY (event_id) REFERENCES events (id) ON DELETE CASCADE;
ALTER TABLE traits_string ADD FOREIGN KEY (event_id) REFERENCES events (id) ON DELETE CASCADE;
ALTER TABLE events ADD FOREIGN KEY (user_ref) REFERENCES tenants (id);
ALTER TABLE events ADD FOREIGN KEY (project_ref) REFERENCES tenants (id);
ALTER TABLE events ADD FOREIGN KEY (event_type_id) REFERENCES event_types (id);
