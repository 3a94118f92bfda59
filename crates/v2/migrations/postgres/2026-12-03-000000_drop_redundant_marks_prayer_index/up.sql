-- The unique key (prayer_id, user_id, marked_at) leads with prayer_id, so it serves every lookup
-- of a prayer's marks; the separate (prayer_id) index only cost a build at every commit
-- (spec/v2.md: "no separate (prayer_id) index").
DROP INDEX IF EXISTS idx_prayer_marks_prayer_id;
