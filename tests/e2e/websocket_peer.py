"""WebSocket peers for tests/e2e/websocket.sh, with Debian's python3-websockets.

  websocket_peer.py server PORT          echo server; /refuse answers 403
  websocket_peer.py check URL CHECK...   run client checks against URL (through sluice)

Checks: echo, ping, big (64 MiB with a slow reader), close, refuse, hold
(keeps a connection open and echoes on it when SLUICE_RELOADED appears on
stdin: for the reload test).
"""
import asyncio
import http
import sys

import websockets


async def serve(port):
    async def echo(ws, path):
        async for message in ws:
            await ws.send(message)

    async def refuse(path, headers):
        if path.startswith("/refuse"):
            return http.HTTPStatus.FORBIDDEN, [], b"no upgrade for you\n"
        return None

    async with websockets.serve(echo, "127.0.0.1", port, process_request=refuse,
                                max_size=None, ping_interval=None):
        await asyncio.Future()


def ok(name, good, detail=""):
    print(("ok: " if good else "FAIL: ") + name + ("" if good else ": " + detail), flush=True)
    return good


async def check(url, names):
    good = True
    for name in names:
        if name == "echo":
            async with websockets.connect(url + "/ws/echo", ping_interval=None) as ws:
                await ws.send("hello through sluice")
                got = await asyncio.wait_for(ws.recv(), 5)
                good &= ok("text echo", got == "hello through sluice", repr(got))
                await ws.send(b"\x00\x01binary\xff")
                got = await asyncio.wait_for(ws.recv(), 5)
                good &= ok("binary echo", got == b"\x00\x01binary\xff", repr(got))
        elif name == "ping":
            async with websockets.connect(url + "/ws/ping", ping_interval=None) as ws:
                pong = await ws.ping(b"are you there")
                await asyncio.wait_for(pong, 5)
                good &= ok("ping answered by pong", True)
        elif name == "close":
            ws = await websockets.connect(url + "/ws/close", ping_interval=None)
            await ws.close(code=1000, reason="done")
            good &= ok("close handshake completes", ws.close_code == 1000, str(ws.close_code))
        elif name == "big":
            # 64 MiB echoed back to a reader that takes its time: sluice holds
            # it back (bounded memory) rather than buffering it.
            size = 64 << 20
            async with websockets.connect(url + "/ws/big", ping_interval=None, max_size=None,
                                          read_limit=2 ** 16, write_limit=2 ** 16) as ws:
                payload = bytes(range(256)) * (size // 256)
                await ws.send(payload)
                await asyncio.sleep(2)  # a slow reader
                got = await asyncio.wait_for(ws.recv(), 60)
                good &= ok("64 MiB message echoed intact", got == payload, str(len(got)))
        elif name == "refuse":
            try:
                async with websockets.connect(url + "/refuse", ping_interval=None):
                    good &= ok("refused upgrade", False, "connected")
            except websockets.exceptions.InvalidStatusCode as e:
                good &= ok("upstream refusing the upgrade gives its answer", e.status_code == 403,
                           str(e.status_code))
        elif name == "hold":
            async with websockets.connect(url + "/ws/hold", ping_interval=None) as ws:
                await ws.send("before")
                good &= ok("tunnel open before reload", await asyncio.wait_for(ws.recv(), 5) == "before")
                print("HOLDING", flush=True)
                loop = asyncio.get_running_loop()
                line = await loop.run_in_executor(None, sys.stdin.readline)
                await ws.send("after " + line.strip())
                got = await asyncio.wait_for(ws.recv(), 5)
                good &= ok("tunnel survives a reload", got == "after " + line.strip(), got)
                # Then the draining worker closes it by shutdown_timeout.
                try:
                    await asyncio.wait_for(ws.recv(), 15)
                    good &= ok("tunnel closed at shutdown_timeout", False, "got a message")
                except websockets.exceptions.ConnectionClosed:
                    good &= ok("tunnel closed by the old generation's shutdown_timeout", True)
                except asyncio.TimeoutError:
                    good &= ok("tunnel closed at shutdown_timeout", False, "still open")
    return good


def main():
    if sys.argv[1] == "server":
        asyncio.run(serve(int(sys.argv[2])))
    else:
        sys.exit(0 if asyncio.run(check(sys.argv[2], sys.argv[3:])) else 1)


if __name__ == "__main__":
    main()
