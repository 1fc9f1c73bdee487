-- wrk script: send `depth` pipelined requests per write (TFB's plaintext test uses 16).
-- usage: wrk ... -s benchmarks/tfb/pipeline.lua http://127.0.0.1:PORT/plaintext -- 16
init = function(args)
  local depth = tonumber(args[1]) or 1
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format()
  end
  req = table.concat(r)
end

request = function()
  return req
end
