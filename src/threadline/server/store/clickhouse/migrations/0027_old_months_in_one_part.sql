-- A month that has had no insert for a day is merged into one part, in the tables
-- partitioned by month (docs/architecture.md).
--
-- A page's or a detail's read by trace id (or session id) searches the primary index of
-- every part of every month, whatever the window: a trace id is random, so each part's
-- key range holds it, and each part costs its index search and a granule read. ClickHouse
-- merges a month's parts on its own only while that pays by size (four equal parts may
-- stay four for good), so a first read cost as much per part as per month kept: at 10M
-- spans over five months, 14 parts of trace_parts_packed made the Sessions page's read of
-- its traces 3 to 4 times dearer than the same read repeated (docs/benchmarks.md).
-- `min_age_to_force_merge_seconds` with `..._on_partition_only` merges a whole partition
-- into one part once every part of it is a day old: past months, and the current one of
-- a project quiet for a day; a partition written to within the day is left to the usual
-- merges. A merge changes no read (every table here merges idempotently), nor retention
-- (a month's rows already go together, when its last one expires).
ALTER TABLE spans MODIFY SETTING
    min_age_to_force_merge_seconds = 86400, min_age_to_force_merge_on_partition_only = 1;
ALTER TABLE trace_parts_packed MODIFY SETTING
    min_age_to_force_merge_seconds = 86400, min_age_to_force_merge_on_partition_only = 1;
ALTER TABLE trace_parts_by_id MODIFY SETTING
    min_age_to_force_merge_seconds = 86400, min_age_to_force_merge_on_partition_only = 1;
ALTER TABLE trace_times MODIFY SETTING
    min_age_to_force_merge_seconds = 86400, min_age_to_force_merge_on_partition_only = 1;
ALTER TABLE trace_activity MODIFY SETTING
    min_age_to_force_merge_seconds = 86400, min_age_to_force_merge_on_partition_only = 1;
ALTER TABLE session_members MODIFY SETTING
    min_age_to_force_merge_seconds = 86400, min_age_to_force_merge_on_partition_only = 1;
ALTER TABLE user_activity MODIFY SETTING
    min_age_to_force_merge_seconds = 86400, min_age_to_force_merge_on_partition_only = 1;
ALTER TABLE trace_labels MODIFY SETTING
    min_age_to_force_merge_seconds = 86400, min_age_to_force_merge_on_partition_only = 1;
-- (No longer written since 0011, kept empty: so that every table by month has it.)
ALTER TABLE trace_parts MODIFY SETTING
    min_age_to_force_merge_seconds = 86400, min_age_to_force_merge_on_partition_only = 1
