-- S5 paced with wrk (bench/s5_paced.py --wrk): one thread and one connection per worker name, each
-- popping, then waiting 1 s +- 10 % (random first phase). FLEET names a file with one worker a line:
-- "<path>\t<apikey>\t<JSON pop body>" (the fleet the Python generator created, so the workers exist):
--   FLEET=fleet.tsv wrk -t100 -c100 -d30s --latency -s bench/wrk/fleet.lua http://127.0.0.1:7001
local lines = {}
local count = 0

function setup(thread)
  if #lines == 0 then
    for line in io.lines(os.getenv("FLEET")) do
      lines[#lines + 1] = line
    end
  end
  count = count + 1
  thread:set("index", count)
  thread:set("line", lines[(count - 1) % #lines + 1])
end

function init(args)
  local path, key, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
  req = wrk.format("POST", path, {["apikey"] = key, ["Content-Type"] = "application/json"}, body)
  math.randomseed(index * 7919 + os.time())
  first = true
end

function request()
  return req
end

function delay()
  if first then
    first = false
    return math.random(1000)
  end
  return 900 + math.random(200)
end
