-- Cached reads: GET one of the HOT_USERS (100) hottest users, cached after the warm-up.
package.path = package.path .. ";" .. (os.getenv("WRK_LIB") or "loadtest/wrk") .. "/?.lua"
require("common")

local first = tonumber(os.getenv("FIRST_ID") or "1")
local hot = tonumber(os.getenv("HOT_USERS") or "100")

function request()
  return wrk.format("GET", "/api/users/" .. (first + math.random(0, hot - 1)) .. edge_query)
end
