"""A stdio MCP server whose answers to `tools/call` are raw lines chosen by the
call's `how` argument: results whose envelope a reader could take two ways."""

import json
import sys

LINES = {
    # Two ids: a reader that keeps the first and one that keeps the last answer different calls.
    "two_ids": '{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"first"}}]}},"id":999}}',
    # An escaped spelling of `id` is the same key.
    "escaped_id": '{{"jsonrpc":"2.0","id":{id},"\\u0069d":999,"result":{{"content":[]}}}}',
    # Two results.
    "two_results": '{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"a"}}]}},"result":{{"content":[{{"type":"text","text":"b"}}]}}}}',
    # Two messages on one line.
    "two_messages": '{{"jsonrpc":"2.0","id":{id},"result":{{"content":[]}}}}{{"jsonrpc":"2.0","id":999,"result":{{}}}}',
    # A string that never ends, hiding the rest.
    "open_string": '{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"open}}]}}}}',
    # Honest: quotes, braces and an id inside the text are content.
    "honest": '{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"\\"}}],\\"id\\":999,{{"}}]}}}}',
}

TOOL = {"name": "answer", "description": "Answers.", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": True}}


def main() -> None:
    for raw in sys.stdin:
        msg = json.loads(raw)
        method, mid = msg.get("method"), msg.get("id")
        if mid is None:
            continue
        if method == "initialize":
            result = {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}}, "serverInfo": {"name": "hostile", "version": "1"}}
            out = json.dumps({"jsonrpc": "2.0", "id": mid, "result": result})
        elif method == "tools/list":
            out = json.dumps({"jsonrpc": "2.0", "id": mid, "result": {"tools": [TOOL]}})
        elif method == "tools/call":
            out = LINES[msg["params"]["arguments"]["how"]].format(id=json.dumps(mid))
        else:
            out = json.dumps({"jsonrpc": "2.0", "id": mid, "result": {}})
        sys.stdout.write(out + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
