#!/usr/bin/env python3
"""A raw Switchyard client that resumes with its own positions (PROTOCOL.md §9), on Debian's
python3-websockets; used by test/clients/python-resume.test.ts.

Connects to the first URL, authenticates, subscribes to CHANNEL and prints every frame as one
JSON line. When that connection drops (its node killed), it connects to the next URL and sends
{"type":"auth","token","session_id","positions":{CHANNEL: last seq received}}, and goes on
printing. It keeps no event store of its own and drops nothing: every event it prints is one
the server sent. Exits 0 once it has printed an event with seq >= LAST. Exit codes: 2 timeout,
3 auth_error, 4 subscription refused, 5 out of URLs.
"""

import argparse
import asyncio
import json
import sys

import websockets


def emit(frame):
    sys.stdout.write(json.dumps(frame, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def session(url, args, state):
    async with websockets.connect(url, open_timeout=args.timeout, close_timeout=1) as ws:
        auth = {"type": "auth", "token": args.token}
        if state["session_id"] is not None:
            auth["session_id"] = state["session_id"]
            auth["positions"] = {args.channel: state["last"]}
        await ws.send(json.dumps(auth))
        while True:
            frame = json.loads(await ws.recv())
            emit(frame)
            kind = frame.get("type")
            if kind == "auth_error":
                return 3
            if kind == "auth_success":
                if not frame.get("resumed"):
                    state["session_id"] = frame["session_id"]
                    await ws.send(json.dumps({"type": "subscribe", "channel": args.channel, "ref": "py-sub"}))
            elif kind == "subscription_result" and not frame.get("success"):
                return 4
            elif kind == "event" and frame.get("channel") == args.channel:
                state["last"] = frame["seq"]
                if frame["seq"] >= args.last:
                    return 0


async def run(args):
    state = {"session_id": None, "last": 0}
    for url in args.urls:
        try:
            return await session(url, args, state)
        except (websockets.exceptions.ConnectionClosed, OSError) as err:
            emit({"type": "py.disconnected", "url": url, "error": str(err)})
    return 5


async def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("token")
    parser.add_argument("channel")
    parser.add_argument("last", type=int)
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    try:
        return await asyncio.wait_for(run(args), timeout=args.timeout)
    except asyncio.TimeoutError:
        sys.stderr.write("timed out after %s s\n" % args.timeout)
        return 2


if __name__ == "__main__":
    sys.stderr.write("websockets %s\n" % websockets.__version__)
    sys.exit(asyncio.run(main()))
