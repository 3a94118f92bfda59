-- spec/v2.md: real v1 prayers are shorter than the draft's 10 characters ("My mom", "Job!!"), and
-- v2 keeps them: a text must only be non-blank and at most 5000 characters. The CHECK is widened
-- in place, as in 2026-12-03-000001 (no stored byte changes; a rebuild would cascade).
PRAGMA writable_schema = ON;
UPDATE sqlite_master
   SET sql = replace(sql, 'CHECK (length(text) BETWEEN 10 AND 5000)',
                     'CHECK (length(trim(text)) >= 1 AND length(text) <= 5000)')
 WHERE type = 'table' AND name = 'prayers';
PRAGMA writable_schema = RESET;
CREATE TABLE migration_schema_bump (x INTEGER);
DROP TABLE migration_schema_bump;
