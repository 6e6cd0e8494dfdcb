-- A mix in every cycle of 20 requests per thread (one connection per thread): 16 live GETs
-- (80%), 3 If-Match PUTs of the thread's own entities (15%) and 1 publish of the entity it
-- wrote last (5%), If-Match the ETag that PUT answered with.
local common = require("common")

local CYCLE = 20
local PUT_AT = { [5] = true, [10] = true, [15] = true }
local PUBLISH_AT = 20

function init(args)
  next_get = common.in_turn(common.live_gets())
  next_entity = common.in_turn(common.owned_entities())
  sent = 0
end

function request()
  sent = sent + 1
  local step = (sent - 1) % CYCLE + 1
  if PUT_AT[step] then
    kind, current = "put", next_entity()
    return common.start(kind, common.put(current, sent))
  elseif step == PUBLISH_AT then
    kind = "publish"
    return common.start(kind, common.publish(current))
  end
  kind = "get"
  return common.start(kind, (next_get()))
end

function response(status, headers, body)
  common.finish(status)
  if not common.is_success(status) then
    return
  end
  if kind == "put" then
    common.ack_put(current, headers)
  elseif kind == "publish" then
    common.ack_publish(body)
  end
end
