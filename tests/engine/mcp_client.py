"""A real MCP client (the official Python SDK, `mcp` 2.x) driving `sift mcp`
over stdio, for tests/engine/mcp_server.rs.

Usage: python mcp_client.py SIFT_BINARY < calls.json > answers.json

calls.json is a list of {"tool": name, "args": {...}}. The client starts the
server, initializes the session, lists the tools, makes each call in order on
the same session and prints one JSON document:
{"server": name, "tools": {name: input schema}, "answers": [
  {"is_error": bool, "structured": ..., "text": ...}            (a tool result)
  or {"protocol_error": {"code": int, "message": str}}           (an MCP error)
]}
The Rust test asserts on it; this script only relays.
"""

import json
import os
import sys

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError


async def main() -> None:
    binary = sys.argv[1]
    calls = json.load(sys.stdin)
    # The server gets this process's environment (data folder, model folder).
    params = StdioServerParameters(command=binary, args=["mcp"], env=dict(os.environ))
    out = {"answers": []}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            out["server"] = init.server_info.name
            tools = await session.list_tools()
            out["tools"] = {t.name: t.input_schema for t in tools.tools}
            for call in calls:
                try:
                    result = await session.call_tool(call["tool"], call.get("args"))
                except MCPError as e:
                    out["answers"].append(
                        {"protocol_error": {"code": e.code, "message": e.message}}
                    )
                    continue
                text = "".join(c.text for c in result.content if getattr(c, "type", "") == "text")
                out["answers"].append(
                    {
                        "is_error": result.is_error,
                        "structured": result.structured_content,
                        "text": text,
                    }
                )
    json.dump(out, sys.stdout)


anyio.run(main)
