CREATE INDEX IF NOT EXISTS idx_prayer_marks_prayer_id ON prayer_marks (prayer_id);
