-- wrk script (bench.py's syscall count): every request on a new connection
-- (`Connection: close`; wrk reconnects after each response), so the count
-- includes accept, the close and what a proxy does around them.
wrk.headers["Connection"] = "close"
