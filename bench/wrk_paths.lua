-- wrk script: cycle through BENCH_PATHS (comma-separated) as the signed-in customer
-- whose session token is BENCH_TOKEN (the caller repeats short runs up to its request count).
local paths, token = {}, os.getenv("BENCH_TOKEN")
for p in string.gmatch(os.getenv("BENCH_PATHS"), "[^,]+") do paths[#paths + 1] = p end
local sent = 0
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Cookie"] = "portico_session=" .. token

request = function()
  sent = sent + 1
  return wrk.format("GET", paths[(sent - 1) % #paths + 1])
end

