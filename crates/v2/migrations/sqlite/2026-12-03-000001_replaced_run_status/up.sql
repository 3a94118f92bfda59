-- A run whose data a later `--replace` run emptied is `replaced`, not left `succeeded`.
-- SQLite cannot alter a CHECK constraint, and rebuilding migration_runs would cascade-delete the
-- findings and id maps that reference it (foreign keys cannot be switched off inside the
-- migration's transaction). Widening a CHECK changes no stored byte, so the table's definition is
-- edited in place, the documented way (sqlite.org/lang_altertable.html, "other kinds of table
-- schema changes"); RESET makes this connection re-read it, the
-- CREATE/DROP bumps the schema cookie so every other connection does too.
PRAGMA writable_schema = ON;
UPDATE sqlite_master
   SET sql = replace(sql, '''failed'', ''rolled_back'')', '''failed'', ''rolled_back'', ''replaced'')')
 WHERE type = 'table' AND name = 'migration_runs';
PRAGMA writable_schema = RESET;
CREATE TABLE migration_schema_bump (x INTEGER);
DROP TABLE migration_schema_bump;
