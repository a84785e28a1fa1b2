-- Nothing to do on SQLite: a page's traits are read from the trait tables in process, one
-- primary-key probe per event and table, which costs no round trip; a copy of each event's
-- traits in its row would cost about a quarter more file (the store keeps under 700 bytes an
-- event). Kept so that both trees carry the same migrations.
SELECT 1;
