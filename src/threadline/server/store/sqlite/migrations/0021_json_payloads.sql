-- Which of a span's input (1) and output (2) are JSON the API shows as stored, found as
-- the span is prepared for writing (store/sqlite/json_payloads.py): the bulk export
-- writes those without parsing them again. 0 for the spans written before: their
-- payloads are checked as they are exported, as before. A constant default: SQLite
-- adds the column without rewriting the table.
ALTER TABLE spans ADD COLUMN json_payloads INTEGER NOT NULL DEFAULT 0;
