-- wrk script: `runs/log-batch` POSTs of 1,000 metrics (10 keys, each batch at new steps, as
-- bench.py logs them: a training loop's history grows), for a client whose own cost is
-- negligible. Run id from $RUN_ID. See wrk.sh.
local run_id = os.getenv("RUN_ID")
local batch = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  local metrics = {}
  for i = 0, 999 do
    metrics[#metrics + 1] = string.format(
      '{"key":"m%d","value":%d.0,"timestamp":1700000000000,"step":%d}',
      i % 10, i, batch * 1000 + i)
  end
  batch = batch + 1
  local body = '{"run_id":"' .. run_id .. '","metrics":[' .. table.concat(metrics, ",") .. ']}'
  return wrk.format(nil, "/api/2.0/mlflow/runs/log-batch", nil, body)
end
