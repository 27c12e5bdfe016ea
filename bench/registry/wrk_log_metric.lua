-- wrk script: one `runs/log-metric` POST per request (a new step each time), for a client
-- whose own cost is negligible. The run id comes from $RUN_ID. See wrk.sh.
local run_id = os.getenv("RUN_ID")
local step = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  step = step + 1
  local body = string.format(
    '{"run_id":"%s","key":"loss","value":%.6f,"timestamp":%d,"step":%d}',
    run_id, 1 / step, 1700000000000 + step, step)
  return wrk.format(nil, "/api/2.0/mlflow/runs/log-metric", nil, body)
end
