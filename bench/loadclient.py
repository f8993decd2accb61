"""Bounded HTTP/1.1 load for the storm: `python loadclient.py PORT SECONDS CONNECTIONS OUT.json`.

Each of CONNECTIONS keep-alive connections (renewed every PER_CONNECTION requests) sends
requests back to back until SECONDS have passed; every request carries a unique id
(`/storm?id=<conn>-<seq>`) so that the access lines can be matched to answered
requests one by one. Writes {"ok": [...], "failed": [...]} to OUT.
"""

import asyncio
import json
import sys
import time

# Reconnect after this many requests, so that both workers accept connections (one worker
# would otherwise accept all eight at start-up and serve everything).
PER_CONNECTION = 50
ERRORS = (OSError, EOFError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, IndexError)


async def one_connection(cid, port, deadline, ok, failed):
    seq = 0
    reader = writer = None
    while time.monotonic() < deadline:
        rid = "{}-{}".format(cid, seq)
        seq += 1
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
            request = "GET /storm?id={} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".format(rid)
            writer.write(request.encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            status = int(head.split(b" ", 2)[1])
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                key, _, value = line.partition(b":")
                key = key.strip().lower()
                if key == b"content-length":
                    length = int(value)
                elif key == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length:
                await asyncio.wait_for(reader.readexactly(length), 10)
            (ok if status == 200 else failed).append(rid)
            if close or seq % PER_CONNECTION == 0:
                writer.close()
                writer = None
        except ERRORS:
            failed.append(rid)
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.005)  # a dead worker: reconnect shortly, still bounded by the deadline
    if writer is not None:
        writer.close()


async def main(port, seconds, connections):
    ok, failed = [], []
    deadline = time.monotonic() + seconds
    await asyncio.gather(*[one_connection(c, port, deadline, ok, failed) for c in range(connections)])
    return ok, failed


if __name__ == "__main__":
    port, seconds, connections, out = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    started = time.monotonic()
    ok, failed = asyncio.run(main(port, seconds, connections))
    with open(out, "w") as f:
        json.dump({"ok": ok, "failed": failed, "seconds": time.monotonic() - started}, f)
