-- The bare endpoint (bench/bare.py): a POST with a pop-sized JSON body, answered by one asyncpg query.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"name": "wrk-worker-00", "models": ["model-1", "model-2", "model-3"], "max_length": 512, '
  .. '"max_context_length": 4096, "threads": 1, "bridge_agent": "AI Horde Worker reGen:9.0.0"}'
