-- Cached reads: GET one of the 1,000 hottest users (all cached after the warm-up).
package.path = package.path .. ";" .. (os.getenv("WRK_LIB") or "loadtest/wrk") .. "/?.lua"
require("common")

local first = tonumber(os.getenv("FIRST_ID") or "1")

function request()
  return wrk.format("GET", "/api/users/" .. (first + math.random(0, 999)))
end
