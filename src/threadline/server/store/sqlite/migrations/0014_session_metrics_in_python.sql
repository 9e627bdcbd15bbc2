-- Sessions written take back and add their part of metric_activity in the write
-- transaction itself (store/sqlite/session_writes.py), a batch's changes added up per
-- bucket, instead of two upserts per row written by these triggers. A session deleted
-- is still taken back by metric_session_after_delete.
DROP TRIGGER metric_session_before_write;
DROP TRIGGER metric_session_after_write;
