"""An upstream MCP server on the official Python SDK, for Gatehouse's gateway tests.

    python py_upstream.py --port N [--transport http|sse]
        [--issuer URL --resource URL --client-id ID --client-secret S]
        [--require-header NAME=VALUE]

With --issuer it is an OAuth resource server: every request needs a Bearer token that the
issuer's introspection endpoint (RFC 7662) says is active and whose audience is --resource;
otherwise 401. With --require-header a request without that exact header gets 401.
Tools: `echo` (returns its text), `add_tool` (adds one and sends
notifications/tools/list_changed), `whoami` (the token's subject, client and audience) and
`seen_headers` (the names of the headers it received, plus the Authorization value, so a test
can check that nothing of the MCP client's reached it). Prints "ready <port>" once listening.
"""

import argparse
import asyncio
import json
import sys

import httpx2 as httpx
import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--transport", choices=["http", "sse"], default="http")
parser.add_argument("--issuer")
parser.add_argument("--resource")
parser.add_argument("--client-id")
parser.add_argument("--client-secret")
parser.add_argument("--require-header")
args = parser.parse_args()


class IntrospectingVerifier:
    """Asks the issuer about each token; accepts it only for this resource."""

    async def verify_token(self, token: str) -> AccessToken | None:
        async with httpx.AsyncClient(timeout=5) as client:
            answer = await client.post(
                f"{args.issuer}/token/introspection",
                data={"token": token, "client_id": args.client_id, "client_secret": args.client_secret},
            )
        info = answer.json()
        if not info.get("active"):
            return None
        aud = info.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if args.resource not in audiences:
            print(f"refused a token for audience {aud!r}", file=sys.stderr, flush=True)
            return None
        return AccessToken(
            token=token,
            client_id=info.get("client_id", ""),
            scopes=(info.get("scope") or "").split(),
            expires_at=info.get("exp"),
            resource=args.resource,
            subject=info.get("sub"),
        )


auth = None
verifier = None
if args.issuer:
    verifier = IntrospectingVerifier()
    auth = AuthSettings(
        issuer_url=args.issuer,
        resource_server_url=args.resource,
        validate_token_resource=True,
    )

server = MCPServer("py-upstream", token_verifier=verifier, auth=auth)


@server.tool(description="Returns the text it is given.")
def echo(text: str) -> str:
    return f"py-upstream: {text}"


@server.tool(description="Who the upstream thinks is calling.")
async def whoami(ctx: Context) -> str:
    headers = ctx.headers or {}
    token = (headers.get("authorization") or "").removeprefix("Bearer ")
    if not args.issuer or not token:
        return json.dumps({"authenticated": False})
    info = await verifier.verify_token(token)
    return json.dumps({"authenticated": True, "subject": info.subject, "client_id": info.client_id, "audience": info.resource})


@server.tool(description="The headers this request arrived with (names, and Authorization).")
def seen_headers(ctx: Context) -> str:
    headers = ctx.headers or {}
    return json.dumps({"names": sorted(headers.keys()), "authorization": headers.get("authorization"),
                       "custom": {k: v for k, v in headers.items() if k.startswith("x-")}})


@server.tool(description="Adds a tool named `name` and tells the clients the list changed.")
async def add_tool(name: str, ctx: Context) -> str:
    server.add_tool(lambda: f"I am {name}", name=name, description=f"Added at run time: {name}")
    await ctx.session.send_tool_list_changed()
    return f"added {name}"


def app():
    inner = server.sse_app() if args.transport == "sse" else server.streamable_http_app()
    if not args.require_header:
        return inner
    name, value = args.require_header.split("=", 1)
    name = name.lower().encode()

    async def guarded(scope, receive, send):
        if scope["type"] == "http" and (name, value.encode()) not in scope["headers"]:
            await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": b'{"error": "missing or wrong header"}'})
            return
        await inner(scope, receive, send)

    return guarded


async def main():
    config = uvicorn.Config(app(), host="127.0.0.1", port=args.port, log_level="warning", lifespan="on")
    server_ = uvicorn.Server(config)
    task = asyncio.create_task(server_.serve())
    while not server_.started:
        await asyncio.sleep(0.05)
    print(f"ready {args.port}", flush=True)
    await task


asyncio.run(main())
