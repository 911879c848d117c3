"""An MCP client built on the official Python SDK (`mcp`), for Gatehouse's tests.

    python py_client.py <url> --mode legacy|2026-07-28 [--token T --via header|query]

Connects, lists tools, calls whoami and a tool with bad arguments, then prints one JSON line.
"""

import argparse
import asyncio
import json
from urllib.parse import urlencode, urlparse, urlunparse, parse_qsl

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--mode", default="legacy")
    p.add_argument("--token")
    p.add_argument("--via", default="header", choices=["header", "query"])
    return p.parse_args()


async def main():
    args = parse()
    url = args.url
    headers = {}
    if args.token and args.via == "query":
        parts = urlparse(url)
        query = parse_qsl(parts.query) + [("token", args.token)]
        url = urlunparse(parts._replace(query=urlencode(query)))
    elif args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    async with create_mcp_http_client(headers=headers) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=args.mode) as client:
            tools = (await client.list_tools()).tools
            whoami = await client.call_tool("whoami", {})
            bad = await client.call_tool("gatehouse_status", {"sections": "everything"})
            print(
                json.dumps(
                    {
                        "sdk": "mcp (Python)",
                        "protocolVersion": str(client.protocol_version),
                        "tools": [t.name for t in tools],
                        "schemas": {t.name: t.input_schema for t in tools},
                        "whoami": whoami.structured_content,
                        "badArguments": {
                            "isError": bool(bad.is_error),
                            "text": bad.content[0].text if bad.content else None,
                        },
                    }
                )
            )


asyncio.run(main())
