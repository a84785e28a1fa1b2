-- Nothing to do on SQLite: its trait tables keep their (event_id, name_id) keys, which hold the
-- values that pages read for string traits (its rows carry only their numeric traits, see
-- 2026-12-06-000007_sqlite_trait_numbers). Kept so that both trees carry the same migrations.
SELECT 1;
