ALTER TABLE events DROP COLUMN numbers;
