-- spec/v2.md: real v1 prayers are shorter than the draft's 10 characters ("My mom", "Job!!"), and
-- v2 keeps them: a text must only be non-blank and at most 5000 characters.
ALTER TABLE prayers DROP CONSTRAINT prayers_text_check;
ALTER TABLE prayers ADD CONSTRAINT prayers_text_check
    CHECK (length(trim(text)) >= 1 AND length(text) <= 5000);
