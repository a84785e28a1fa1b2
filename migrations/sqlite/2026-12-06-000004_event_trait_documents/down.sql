-- Nothing was added on SQLite (see up.sql).
SELECT 1;
