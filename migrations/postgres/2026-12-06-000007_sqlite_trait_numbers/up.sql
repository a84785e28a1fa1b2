-- Nothing to do on PostgreSQL: its rows carry every trait in their `jsonb` document
-- (2026-12-06-000006_keyed_trait_documents). Kept so that both trees carry the same migrations.
SELECT 1;
