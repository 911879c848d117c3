"""An MCP client on the official Python SDK (`mcp`) that declares URL elicitation and follows a
"connect your account" link the way an application does: it shows the link (prints it as a
JSON line), waits for the user to come back (a line on stdin), and goes on.

    python py_connect_client.py <url> --token T --mode legacy|2026-07-28 --tool NAME

- legacy (2025-11-25): the call fails with -32042 (UrlElicitationRequiredError) carrying the
  link; once the user is back the client waits for `notifications/elicitation/complete` with
  that elicitation's id, then calls again.
- 2026-07-28: the SDK hands the link to the elicitation callback inside the
  InputRequiredResult rounds; the callback accepts once the user is back, and the SDK retries
  the call with the sealed requestState.

Prints one last JSON line: the final result's texts, whether it was an error, the links it was
sent, and the notifications that arrived.
"""

import argparse
import asyncio
import json
import sys

import anyio
import mcp.types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError, UrlElicitationRequiredError

URL_ELICITATION_REQUIRED = -32042

links = []
notifications = []
completed = set()
arrived = asyncio.Event()


def show(url, mode, message, elicitation_id=None):
    links.append({"url": url, "mode": mode, "message": message, "elicitationId": elicitation_id})
    print(json.dumps({"link": url}), flush=True)


async def user_is_back():
    await anyio.to_thread.run_sync(sys.stdin.readline)


async def on_elicit(context, params):
    show(params.url, params.mode, params.message, getattr(params, "elicitation_id", None))
    await user_is_back()
    return types.ElicitResult(action="accept")


async def on_message(message):
    method = getattr(message, "method", None)
    if method is None:
        return
    params = getattr(message, "params", None)
    notifications.append(method)
    if method == "notifications/elicitation/complete" and params is not None:
        completed.add(params.elicitation_id)
        arrived.set()


def texts(result):
    return [c.text for c in result.content if getattr(c, "type", "") == "text"]


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--token", required=True)
    p.add_argument("--mode", default="legacy")
    p.add_argument("--tool", required=True)
    args = p.parse_args()
    headers = {"Authorization": f"Bearer {args.token}"}
    async with create_mcp_http_client(headers=headers) as http:
        async with Client(
            streamable_http_client(args.url, http_client=http),
            mode=args.mode,
            elicitation_callback=on_elicit,
            message_handler=on_message,
        ) as client:
            try:
                result = await client.call_tool(args.tool, {})
            except MCPError as e:
                if e.code != URL_ELICITATION_REQUIRED:
                    raise
                required = UrlElicitationRequiredError.from_error(e.error)
                for elicitation in required.elicitations:
                    show(elicitation.url, elicitation.mode, elicitation.message, elicitation.elicitation_id)
                await user_is_back()
                wanted = {el.elicitation_id for el in required.elicitations}
                with anyio.fail_after(20):
                    while not wanted <= completed:
                        arrived.clear()
                        await arrived.wait()
                result = await client.call_tool(args.tool, {})
            print(
                json.dumps(
                    {
                        "protocolVersion": str(client.protocol_version),
                        "isError": bool(result.is_error),
                        "texts": texts(result),
                        "links": links,
                        "notifications": notifications,
                    }
                )
            )


asyncio.run(main())
