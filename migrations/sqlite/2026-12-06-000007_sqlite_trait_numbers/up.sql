-- Each event's integer, float and datetime traits, also in its row (`store::trait_numbers`): a
-- filter that matches many events reads them in the row its scan is on, and a page reads them
-- without the trait tables. NULL for rows stored before this migration, which are read from the
-- trait tables as before; adding a nullable column rewrites nothing.
ALTER TABLE events ADD COLUMN numbers BLOB;
