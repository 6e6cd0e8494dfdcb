-- Publishes (one connection per thread): each thread publishes its own unpublished entities in
-- turn, If-Match their draft tip. Once all are live, publishing again changes nothing; those
-- answers are counted as no-op publishes, and the run is sized to have none.
local common = require("common")

function init(args)
  next_entity = common.in_turn(common.owned_entities())
end

function request()
  return common.start("publish", common.publish((next_entity())))
end

function response(status, headers, body)
  common.finish(status)
  if common.is_success(status) then
    common.ack_publish(body)
  end
end
