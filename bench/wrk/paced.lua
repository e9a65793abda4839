-- S3 paced with wrk: each connection pops, then waits 1 s +- 10 %:
--   KEY=<key> wrk -t1 -c200 -d15s --latency -s bench/wrk/paced.lua http://127.0.0.1:7001
dofile((os.getenv("WRK_DIR") or "bench/wrk") .. "/pop.lua")

function delay()
  return 900 + math.random(200)
end
