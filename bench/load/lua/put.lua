-- Draft PUTs with If-Match (one connection per thread): each thread owns its entities, takes
-- them in turn, and sends each the ETag its last acknowledged PUT answered with.
local common = require("common")

function init(args)
  next_entity = common.in_turn(common.owned_entities())
end

function request()
  local revision
  current, revision = next_entity()
  return common.start("put", common.put(current, revision))
end

function response(status, headers, body)
  common.finish(status)
  if common.is_success(status) then
    common.ack_put(current, headers)
  end
end
