-- wrk script (bench.py's syscall count): each request a POST whose body
-- comes in two 64-byte chunks (Transfer-Encoding: chunked, no Content-Length).
init = function(args)
  chunked = "POST " .. wrk.path .. " HTTP/1.1\r\n" ..
            "Host: " .. wrk.host .. ":" .. wrk.port .. "\r\n" ..
            "Transfer-Encoding: chunked\r\n\r\n" ..
            "40\r\n" .. string.rep("a", 64) .. "\r\n" ..
            "40\r\n" .. string.rep("b", 64) .. "\r\n" ..
            "0\r\n\r\n"
end

request = function()
  return chunked
end
