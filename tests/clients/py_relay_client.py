"""An MCP client on the official Python SDK (`mcp`) that an upstream server uses through
Gatehouse: it answers elicitation (form), sampling and roots requests, hears progress and log
messages, and calls the tools that cause them.

    python py_relay_client.py <url> --token T --mode legacy|2026-07-28 --server NAME [--no-sampling] [--tools a,b]

Prints one JSON line: each call's texts and whether it was an error, the progress and the log
messages that arrived, and what the upstream asked of this client.
"""

import argparse
import asyncio
import json

import mcp.types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

asked = []
logs = []
progress = []


async def on_elicit(context, params):
    asked.append(f"elicitation: {params.message}")
    return types.ElicitResult(action="accept", content={"colour": "teal"})


async def on_sample(context, params):
    text = params.messages[0].content.text
    asked.append(f"sampling: {text}")
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=f"leaves fall ({text})"),
        model="test-model",
        stop_reason="endTurn",
    )


async def on_roots(context):
    asked.append("roots")
    return types.ListRootsResult(roots=[types.Root(uri="file:///work/project", name="project")])


async def on_log(params):
    logs.append(params.data)


async def on_progress(value, total, message):
    progress.append([value, total, message])


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--token", required=True)
    p.add_argument("--mode", default="legacy")
    p.add_argument("--server", required=True)
    p.add_argument("--no-sampling", action="store_true")
    p.add_argument("--tools", default="count,ask_colour,haiku,roots")
    args = p.parse_args()
    headers = {"Authorization": f"Bearer {args.token}"}
    results = {}
    async with create_mcp_http_client(headers=headers) as http:
        async with Client(
            streamable_http_client(args.url, http_client=http),
            mode=args.mode,
            elicitation_callback=on_elicit,
            sampling_callback=None if args.no_sampling else on_sample,
            list_roots_callback=on_roots,
            logging_callback=on_log,
        ) as client:
            for tool in args.tools.split(","):
                arguments = {"topic": "autumn"} if tool == "haiku" else {}
                try:
                    result = await client.call_tool(
                        f"{args.server}__{tool}",
                        arguments,
                        progress_callback=on_progress if tool == "count" else None,
                    )
                    text = "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")
                    results[tool] = {"isError": bool(result.is_error), "text": text}
                except MCPError as e:
                    results[tool] = {"isError": True, "text": f"protocol error: {e}"}
    print(json.dumps({"results": results, "progress": progress, "logs": logs, "asked": asked}))


asyncio.run(main())
