"""A small MCP server (official Python SDK) with one tool nothing speaks for.

`frobnicate_widget` says nothing about what it does: its name's words are no
verb the classifier knows, its description is `WIDGET_DESCRIPTION` (default
"A widget tool."), it has no annotations. A test changes the description to
give the same tool a new definition. Every call that reaches it is appended
to `LATCH_TEST_RECORD` as one JSON line, like latch-test-server does.
"""

from __future__ import annotations

import json
import os
import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("widgets")


def frobnicate_widget(id: str) -> str:
    record = os.environ.get("LATCH_TEST_RECORD")
    if record:
        with open(record, "a") as f:
            f.write(json.dumps({"time": time.time(), "name": "frobnicate_widget", "arguments": {"id": id}}) + "\n")
    return f"frobnicated {id}"


server.add_tool(frobnicate_widget, description=os.environ.get("WIDGET_DESCRIPTION", "A widget tool."))

if __name__ == "__main__":
    server.run("stdio")
