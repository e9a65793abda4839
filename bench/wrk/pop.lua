-- S3 with wrk as the load generator (it costs far less CPU than the Python one):
--   KEY=<a trusted user's key> wrk -t1 -c40 -d15s --latency -s bench/wrk/pop.lua http://127.0.0.1:7001
-- Each request is a text pop by one of 20 workers of the key's owner (20 is the per-owner and per-IP
-- worker cap; wrk connects from one address).
function init(args)
  local key = os.getenv("KEY")
  requests = {}
  for i = 0, 19 do
    local body = string.format('{"name": "wrk-worker-%02d", "models": ["model-1", "model-2", "model-3"], '
      .. '"max_length": 512, "max_context_length": 4096, "threads": 1, '
      .. '"bridge_agent": "AI Horde Worker reGen:9.0.0:https://github.com/Haidra-Org/horde-worker-reGen"}', i)
    requests[i] = wrk.format("POST", "/api/v2/generate/text/pop",
      {["apikey"] = key, ["Content-Type"] = "application/json"}, body)
  end
  n = 0
end

function request()
  n = n + 1
  return requests[n % 20]
end
