-- Deleting a trace removes the conversation keys it offered or asked for
-- (store/sqlite/deletion_leftovers.py): found by trace, not by scanning every key.
CREATE INDEX conversation_keys_by_trace ON conversation_keys (project_id, trace_id);
