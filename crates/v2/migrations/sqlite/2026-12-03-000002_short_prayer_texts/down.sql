PRAGMA writable_schema = ON;
UPDATE sqlite_master
   SET sql = replace(sql, 'CHECK (length(trim(text)) >= 1 AND length(text) <= 5000)',
                     'CHECK (length(text) BETWEEN 10 AND 5000)')
 WHERE type = 'table' AND name = 'prayers';
PRAGMA writable_schema = RESET;
CREATE TABLE migration_schema_bump (x INTEGER);
DROP TABLE migration_schema_bump;
