"""A same-user process on Latch's socket, as an attacker writes one: it says
hello as a "cli" peer and sends the messages given as JSON on argv, printing
each reply (one JSON object per line). Run as its own process by test_pin.py
and test_reveal.py; an optional third argument is the role it claims.

    python socket_peer.py SOCKET '[{"list_pending": {"req": 1}}, ...]' [ROLE]
"""

from __future__ import annotations

import json
import os
import socket
import sys


def main() -> int:
    path, messages = sys.argv[1], json.loads(sys.argv[2])
    role = sys.argv[3] if len(sys.argv) > 3 else "cli"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    stream = sock.makefile("rwb")

    def send(msg: dict) -> None:
        stream.write(json.dumps(msg).encode() + b"\n")
        stream.flush()

    def recv() -> dict:
        line = stream.readline()
        if not line:
            raise SystemExit("the daemon closed the connection")
        return json.loads(line)

    send({"hello": {"protocol": 1, "role": role, "name": "helper", "pid": os.getpid()}})
    print(json.dumps(recv()), flush=True)
    for msg in messages:
        send(msg)
        req = next(iter(msg.values())).get("req")
        while True:
            reply = recv()
            body = next(iter(reply.values()))
            if isinstance(body, dict) and body.get("req") == req:
                print(json.dumps(reply), flush=True)
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
