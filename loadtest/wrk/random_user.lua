-- Cold reads: GET one user, the id uniform over the seeded range (mostly cache misses).
-- USERS_PATH picks the route: /api/users (cached) or the naive peer's /nocache/users.
package.path = package.path .. ";" .. (os.getenv("WRK_LIB") or "loadtest/wrk") .. "/?.lua"
require("common")

local path = os.getenv("USERS_PATH") or "/api/users"

function request()
  return wrk.format("GET", path .. "/" .. uniform_id() .. edge_query)
end
