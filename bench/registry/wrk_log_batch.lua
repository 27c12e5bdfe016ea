-- wrk script: `runs/log-batch` POSTs of the same 1,000 metrics (10 keys × 100 steps, as
-- bench.py logs them), for a client whose own cost is negligible. Run id from $RUN_ID.
local run_id = os.getenv("RUN_ID")
local metrics = {}
for i = 0, 999 do
  metrics[#metrics + 1] = string.format(
    '{"key":"m%d","value":%d.0,"timestamp":1700000000000,"step":%d}', i % 10, i, i)
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.path = "/api/2.0/mlflow/runs/log-batch"
wrk.body = '{"run_id":"' .. run_id .. '","metrics":[' .. table.concat(metrics, ",") .. ']}'
