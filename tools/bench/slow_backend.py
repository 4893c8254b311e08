#!/usr/bin/python3
"""A tiny HTTP/1.1 keep-alive server for tools/bench/balance.py: answers every
request with 200 and a short body after DELAY milliseconds (0 = at once).

    slow_backend.py PORT DELAY_MS
"""
import asyncio
import sys

BODY = b'ok\n'
RESPONSE = b'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\n' + BODY


async def serve(reader, writer, delay):
    try:
        while True:
            head = await reader.readuntil(b'\r\n\r\n')
            if not head:
                break
            if delay:
                await asyncio.sleep(delay)
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main(port, delay):
    server = await asyncio.start_server(lambda r, w: serve(r, w, delay), '127.0.0.1', port,
                                        backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == '__main__':
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]) / 1000))
