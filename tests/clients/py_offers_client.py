"""An MCP client on the official Python SDK (`mcp`) that uses what Gatehouse relays besides
tools: prompts, resources, resource templates and completions.

    python py_offers_client.py <url> --token T --mode legacy|2026-07-28 --server NAME

Prints one JSON line: the prompt and resource names and URIs it was listed, a prompt's
messages, the texts of two reads (a resource and a template's expansion), and two
completions.
"""

import argparse
import asyncio
import json

import mcp.types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--token", required=True)
    p.add_argument("--mode", default="legacy")
    p.add_argument("--server", required=True)
    args = p.parse_args()
    s = args.server
    headers = {"Authorization": f"Bearer {args.token}"}
    async with create_mcp_http_client(headers=headers) as http:
        async with Client(streamable_http_client(args.url, http_client=http), mode=args.mode) as client:
            prompts = await client.list_prompts()
            resources = await client.list_resources()
            templates = await client.list_resource_templates()
            prompt = await client.get_prompt(f"{s}__summarize", {"topic": "gateways"})
            readme = await client.read_resource(f"gatehouse://{s}/file:///docs/readme.md")
            profile = await client.read_resource(f"gatehouse://{s}/users://alice/profile")
            topic = await client.complete(
                types.PromptReference(type="ref/prompt", name=f"{s}__summarize"),
                {"name": "topic", "value": "ga"},
            )
            user = await client.complete(
                types.ResourceTemplateReference(type="ref/resource", uri=f"gatehouse://{s}/users://{{user_id}}/profile"),
                {"name": "user_id", "value": "al"},
            )
            print(
                json.dumps(
                    {
                        "protocolVersion": str(client.protocol_version),
                        "prompts": [x.name for x in prompts.prompts],
                        "resources": [str(x.uri) for x in resources.resources],
                        "templates": [x.uri_template for x in templates.resource_templates],
                        "prompt": [m.content.text for m in prompt.messages],
                        "reads": [
                            {"uri": str(c.uri), "text": c.text}
                            for r in (readme, profile)
                            for c in r.contents
                        ],
                        "completions": [topic.completion.values, user.completion.values],
                    }
                )
            )


asyncio.run(main())
