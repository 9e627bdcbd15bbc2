-- A day's count of users (metric_user_day_counts, 0010) is kept by ingest itself, from
-- what its upsert of metric_user_days gives back (store/sqlite/metric_upkeep.py): one
-- upsert a day a batch instead of a trigger on every row inserted. A row deleted is
-- still taken out of its day's count by metric_user_day_counts_on_delete.
DROP TRIGGER metric_user_day_counts_on_insert;
