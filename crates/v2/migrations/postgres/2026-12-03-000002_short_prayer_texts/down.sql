ALTER TABLE prayers DROP CONSTRAINT prayers_text_check;
ALTER TABLE prayers ADD CONSTRAINT prayers_text_check CHECK (length(text) BETWEEN 10 AND 5000);
