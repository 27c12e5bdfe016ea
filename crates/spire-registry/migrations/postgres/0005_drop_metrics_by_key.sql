-- Spire registry schema, version 5 (PostgreSQL): drops the key-first metrics index.
--
-- Every metric lookup is run-first (a run's history, its latest values, and run search's
-- correlated `metrics.KEY` subquery), served by metrics_by_run_key. The key-first index was
-- never used by a query, yet every logged batch paid for it: a batch's points are spread
-- over the whole index by key, so one commit of 1,000 metrics touched most of its pages.
DROP INDEX IF EXISTS metrics_by_key;
