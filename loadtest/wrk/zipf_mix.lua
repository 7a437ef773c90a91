-- The read-heavy Zipf mix: 85% GET a user, 10% GET their first page of posts, 5% PATCH a user.
package.path = package.path .. ";" .. (os.getenv("WRK_LIB") or "loadtest/wrk") .. "/?.lua"
require("common")

-- Writes need an API key (make bench passes the stack's own in API_KEY); reads are anonymous.
local patch_headers = {["Content-Type"] = "application/json", ["X-API-Key"] = os.getenv("API_KEY")}

function request()
  local roll = math.random(100)
  local user = zipf_id()
  if roll <= 85 then
    return wrk.format("GET", "/api/users/" .. user .. edge_query)
  elseif roll <= 95 then
    return wrk.format("GET", "/api/users/" .. user .. "/posts" .. edge_query)
  end
  return wrk.format("PATCH", "/api/users/" .. user, patch_headers,
                    '{"second_name":"Bench' .. math.random(1000) .. '"}')
end
