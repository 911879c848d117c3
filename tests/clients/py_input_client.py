"""An MCP client on the official Python SDK (`mcp`) that answers what a server asks for:
forms (elicitation), completions (sampling) and roots. In 2026-07-28 mode the SDK drives the
InputRequiredResult rounds itself; in legacy mode the server sends the same questions as
requests on the stream. For Gatehouse's input-required tests.

    python py_input_client.py <url> --mode legacy|2026-07-28

Calls the conformance fixtures that ask for input and prints one JSON line with what came back
and every question it was asked.
"""

import argparse
import asyncio
import json

import mcp.types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

asked = []


async def on_elicit(context, params):
    asked.append({"method": "elicitation/create", "message": params.message})
    props = (params.requested_schema or {}).get("properties", {})
    answers = {"name": "Ada", "color": "teal", "context": "a test run", "ok": True}
    content = {k: answers.get(k, "x") for k in props}
    return types.ElicitResult(action="accept", content=content)


async def on_sample(context, params):
    asked.append({"method": "sampling/createMessage"})
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="Paris"),
        model="test-model",
        stop_reason="endTurn",
    )


async def on_roots(context):
    asked.append({"method": "roots/list"})
    return types.ListRootsResult(roots=[types.Root(uri="file:///work/project", name="project")])


def texts(result):
    return [c.text for c in result.content if getattr(c, "type", "") == "text"]


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--mode", default="legacy")
    args = p.parse_args()
    async with create_mcp_http_client() as http:
        async with Client(
            streamable_http_client(args.url, http_client=http),
            mode=args.mode,
            elicitation_callback=on_elicit,
            sampling_callback=on_sample,
            list_roots_callback=on_roots,
        ) as client:
            multi_round = await client.call_tool("test_input_required_result_multi_round", {})
            several = await client.call_tool("test_input_required_result_multiple_inputs", {})
            prompt = await client.get_prompt("test_input_required_result_prompt", {})
            resource = await client.read_resource("test://input-required")
            print(
                json.dumps(
                    {
                        "protocolVersion": str(client.protocol_version),
                        "multiRound": texts(multi_round),
                        "several": texts(several),
                        "prompt": [m.content.text for m in prompt.messages],
                        "resource": [c.text for c in resource.contents],
                        "asked": asked,
                    }
                )
            )


asyncio.run(main())
