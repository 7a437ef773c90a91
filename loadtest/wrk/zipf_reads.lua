-- The Zipf reads: anonymous GETs only, 90% a user, 10% their first page of posts (the mix
-- without its writes: what the edge, the caches and the replicas are for).
package.path = package.path .. ";" .. (os.getenv("WRK_LIB") or "loadtest/wrk") .. "/?.lua"
require("common")

function request()
  local user = zipf_id()
  if math.random(100) <= 90 then
    return wrk.format("GET", "/api/users/" .. user .. edge_query)
  end
  return wrk.format("GET", "/api/users/" .. user .. "/posts" .. edge_query)
end
