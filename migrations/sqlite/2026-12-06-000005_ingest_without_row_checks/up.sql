-- Nothing to do on SQLite: its ingest writer's connection already leaves foreign keys
-- unchecked (`store::writer::open`), and every other connection checks them and cascades
-- deletes. Kept so that both trees carry the same migrations.
SELECT 1;
