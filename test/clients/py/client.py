#!/usr/bin/env python3
"""A Switchyard client on Debian's python3-websockets, used by test/clients/python.test.ts.

Connects to URL, authenticates with the first frame {"type":"auth","token":...}, subscribes to
CHANNEL (optionally with --since), prints every frame it receives as one JSON line on stdout,
and exits 0 once it has received COUNT events on that channel. Exit codes: 2 timeout,
3 auth_error, 4 subscription refused, 5 connection closed early.

Only uses the API shared by websockets 10 through 15: connect() as an async context manager,
send(), recv() and open_timeout.
"""

import argparse
import asyncio
import json
import sys

import websockets


def emit(frame):
    sys.stdout.write(json.dumps(frame, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def run(args):
    async with websockets.connect(args.url, open_timeout=args.timeout, close_timeout=1) as ws:
        await ws.send(json.dumps({"type": "auth", "token": args.token}))
        events = 0
        while True:
            frame = json.loads(await ws.recv())
            emit(frame)
            kind = frame.get("type")
            if kind == "auth_error":
                return 3
            if kind == "auth_success":
                subscribe = {"type": "subscribe", "channel": args.channel, "ref": "py-sub"}
                if args.since is not None:
                    subscribe["since"] = args.since
                await ws.send(json.dumps(subscribe))
            elif kind == "subscription_result" and not frame.get("success"):
                return 4
            elif kind == "event" and frame.get("channel") == args.channel:
                events += 1
                if events >= args.count:
                    return 0


async def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("channel")
    parser.add_argument("count", type=int)
    parser.add_argument("--since", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    try:
        return await asyncio.wait_for(run(args), timeout=args.timeout)
    except asyncio.TimeoutError:
        sys.stderr.write("timed out after %s s\n" % args.timeout)
        return 2
    except websockets.exceptions.ConnectionClosed as err:
        sys.stderr.write("connection closed: %s\n" % err)
        return 5


if __name__ == "__main__":
    sys.stderr.write("websockets %s\n" % websockets.__version__)
    sys.exit(asyncio.run(main()))
