-- Uncached reads served by a replica: one user by primary-key range (lists are never cached).
package.path = package.path .. ";" .. (os.getenv("WRK_LIB") or "loadtest/wrk") .. "/?.lua"
require("common")

function request()
  return wrk.format("GET", "/api/users?limit=1&after=" .. (uniform_id() - 1))
end
