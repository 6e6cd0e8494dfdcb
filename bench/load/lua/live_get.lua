-- Live GETs of the sample entities, with the load token, spread over every live key.
local common = require("common")

function init(args)
  next_get = common.in_turn(common.live_gets())
end

function request()
  local get = next_get()
  return get
end

function response(status, headers, body)
  common.count(status)
end
