-- Nothing to do on SQLite: its rows carry no trait document (see
-- 2026-12-06-000004_event_trait_documents). Kept so that both trees carry the same migrations.
SELECT 1;
