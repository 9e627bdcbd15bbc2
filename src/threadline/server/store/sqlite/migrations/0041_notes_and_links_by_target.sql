-- Notes and share links by what they name: deleting traces or sessions deletes their
-- notes by trace_id and their links by target_id (store/sqlite/deletion.py,
-- deletion_leftovers.py), which no index held, so each delete read every note and link
-- of the project. Most notes name no trace: the index of notes holds those that do.
CREATE INDEX notes_by_trace ON notes (project_id, trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX share_links_by_target ON share_links (project_id, kind, target_id);
