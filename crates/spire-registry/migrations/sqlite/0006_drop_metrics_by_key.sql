-- Spire registry schema, version 6 (SQLite): drops the key-first metrics index.
--
-- Every metric lookup is run-first (a run's history, its latest values, and run search's
-- correlated `metrics.KEY` subquery), served by metrics_by_run_key. The key-first index was
-- never used by a query, yet every logged batch paid for it: a batch's points are spread
-- over the whole index by key, so a commit of 1,000 metrics dirtied most of its pages
-- (measured: 1,000-point commits took 14 ms with it and under 4 ms without).
DROP INDEX IF EXISTS metrics_by_key;
