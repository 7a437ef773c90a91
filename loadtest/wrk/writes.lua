-- Writes only: PATCH a random user's second name (make bench-semisync: what each commit costs).
package.path = package.path .. ";" .. (os.getenv("WRK_LIB") or "loadtest/wrk") .. "/?.lua"
require("common")

local headers = {["Content-Type"] = "application/json", ["X-API-Key"] = os.getenv("API_KEY")}

function request()
  return wrk.format("PATCH", "/api/users/" .. uniform_id(), headers,
                    '{"second_name":"Semi' .. math.random(1000) .. '"}')
end
