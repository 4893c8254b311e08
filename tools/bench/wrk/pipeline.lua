-- wrk script (bench.py's syscall count): HTTP/1.1 pipelining, 16 GET
-- requests written at once on each connection; wrk counts every response.
local depth = 16

init = function(args)
  local requests = {}
  for i = 1, depth do
    requests[i] = wrk.format(nil, nil)
  end
  pipelined = table.concat(requests)
end

request = function()
  return pipelined
end
