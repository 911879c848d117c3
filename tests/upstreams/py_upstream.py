"""An upstream MCP server on the official Python SDK, for Gatehouse's gateway tests.

    python py_upstream.py --port N [--transport http|sse]
        [--issuer URL --resource URL --client-id ID --client-secret S]
        [--require-header NAME=VALUE]

With --issuer it is an OAuth resource server (`--resource self`: its own URL, so clients find
the issuer through its 401 and protected resource metadata): every request needs a Bearer token that the
issuer's introspection endpoint (RFC 7662) says is active and whose audience is --resource;
otherwise 401. With --require-header a request without that exact header gets 401.
Tools: `echo` (returns its text), `add_tool` (adds one and sends
notifications/tools/list_changed), `whoami` (the token's subject, client and audience) and
`seen_headers` (the names of the headers it received, plus the Authorization value, so a test
can check that nothing of the MCP client's reached it). Prompts `summarize` (with a completed
`topic`) and `internal_notes`; tools that use the client: `count` (progress and log messages),
`ask_colour` (form elicitation), `haiku` (sampling) and `roots`; resources `file:///docs/readme.md`, `file:///private/keys.txt`
and the template `users://{user_id}/profile` (with a completed `user_id`). Prints
"ready <port>" once listening.
"""

import argparse
import asyncio
import json
import ssl
import sys
from typing import Annotated

import anyio

import httpx2 as httpx
import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp import types
from mcp.server.mcpserver import Context, Elicit, MCPServer, Resolve
from mcp.server.mcpserver.prompts.base import Prompt
from mcp.server.mcpserver.resources.types import TextResource
from mcp.types import Completion, PromptReference, ResourceTemplateReference, SamplingMessage, TextContent
from pydantic import BaseModel

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--transport", choices=["http", "sse"], default="http")
parser.add_argument("--issuer")
parser.add_argument("--resource")
parser.add_argument("--client-id")
parser.add_argument("--client-secret")
parser.add_argument("--require-header")
# Scopes every token must carry; advertised as the resource metadata's scopes_supported.
parser.add_argument("--required-scopes")
# TOOL=SCOPE: calling TOOL needs SCOPE as well; without it, 403 insufficient_scope naming
# every scope needed (step-up).
parser.add_argument("--tool-scope")
# Refuse every request not of the 2026-07-28 revision (a server with no initialize at all).
parser.add_argument("--modern-only", action="store_true")
# A CA to trust for the issuer's https (a throwaway one in tests).
parser.add_argument("--ca-file")
args = parser.parse_args()
# "self": the server's own URL, as a server whose authorization server is elsewhere has it.
if args.resource == "self":
    args.resource = f"http://127.0.0.1:{args.port}/mcp"


class IntrospectingVerifier:
    """Asks the issuer about each token; accepts it only for this resource."""

    async def verify_token(self, token: str) -> AccessToken | None:
        verify = ssl.create_default_context(cafile=args.ca_file) if args.ca_file else True
        async with httpx.AsyncClient(timeout=5, verify=verify) as client:
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
        required_scopes=args.required_scopes.split() if args.required_scopes else None,
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


@server.tool(description="Adds a prompt named `name` and tells the clients the list changed.")
async def add_prompt(name: str, ctx: Context) -> str:
    server.add_prompt(Prompt.from_function(lambda: f"I am {name}", name=name, description=f"Added: {name}"))
    await ctx.session.send_prompt_list_changed()
    return f"added prompt {name}"


@server.tool(description="Adds a resource at `uri` and tells the clients the list changed.")
async def add_resource(uri: str, ctx: Context) -> str:
    server.add_resource(TextResource(uri=uri, name=uri.rsplit("/", 1)[-1], text=f"added at {uri}"))
    await ctx.session.send_resource_list_changed()
    return f"added resource {uri}"


# The resources a client subscribed to (resources/subscribe, resources/unsubscribe).
subscribed = set()


async def on_subscribe(ctx, params):
    subscribed.add(str(params.uri))
    return types.EmptyResult()


async def on_unsubscribe(ctx, params):
    subscribed.discard(str(params.uri))
    return types.EmptyResult()


server._lowlevel_server.add_request_handler("resources/subscribe", types.SubscribeRequestParams, on_subscribe)
server._lowlevel_server.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, on_unsubscribe)


@server.tool(description="Says `uri` was updated if a client subscribed to it; lists the subscribed URIs.")
async def touch(uri: str, ctx: Context) -> str:
    if uri in subscribed:
        await ctx.session.send_resource_updated(uri)
    return json.dumps(sorted(subscribed))


# Request ids of `slow` calls that were cancelled (notifications/cancelled from the client).
cancelled_calls = []
slow_started = []


@server.tool(description="Takes ten seconds unless cancelled.")
async def slow(ctx: Context) -> str:
    slow_started.append(ctx.request_id)
    try:
        await anyio.sleep(10)
    except anyio.get_cancelled_exc_class():
        cancelled_calls.append(ctx.request_id)
        raise
    return "slept"


@server.tool(description="How many slow calls started and how many were cancelled.")
def slow_calls() -> str:
    return json.dumps({"started": len(slow_started), "cancelled": len(cancelled_calls)})


@server.tool(description="Counts to three, reporting progress and logging each step.")
async def count(ctx: Context) -> str:
    for i in range(1, 4):
        await ctx.report_progress(i, 3, f"step {i}")
        await ctx.info(f"counted {i}")
    return "counted to 3"


class Colour(BaseModel):
    colour: str


@server.tool(description="Asks the user for their favourite colour.")
async def ask_colour(ctx: Context) -> str:
    answer = await ctx.elicit("What is your favourite colour?", schema=Colour)
    if answer.action == "accept":
        return f"the user likes {answer.data.colour}"
    return f"the user chose {answer.action}"


def favourite_colour() -> Elicit[Colour]:
    return Elicit("What is your favourite colour?", Colour)


@server.tool(description="Asks the user for their favourite colour through a resolver (2026-07-28: in rounds).")
async def ask_colour_resolved(colour: Annotated[Colour, Resolve(favourite_colour)]) -> str:
    return f"the user likes {colour.colour}"


@server.tool(description="Asks the client's model for a haiku.")
async def haiku(topic: str, ctx: Context) -> str:
    result = await ctx.request_context.session.create_message(
        [SamplingMessage(role="user", content=TextContent(type="text", text=f"A haiku about {topic}"))],
        max_tokens=60,
        related_request_id=ctx.request_id,
    )
    return f"the model wrote: {result.content.text}"


@server.tool(description="The roots the client shares.")
async def roots(ctx: Context) -> str:
    listed = await ctx.request_context.session.list_roots()
    return "roots: " + ", ".join(str(r.uri) for r in listed.roots)


@server.prompt(description="Asks for a short summary of a topic.")
def summarize(topic: str) -> str:
    return f"Summarize {topic} in three lines."


@server.prompt(description="Notes a policy may hide.")
def internal_notes() -> str:
    return "internal"


@server.resource("file:///docs/readme.md", name="readme", description="The upstream's readme.", mime_type="text/markdown")
def readme() -> str:
    return "# py-upstream readme"


@server.resource("file:///private/keys.txt", name="keys", description="What a policy may hide.", mime_type="text/plain")
def keys() -> str:
    return "not for everyone"


@server.resource("users://{user_id}/profile", name="profile", description="A user's profile.", mime_type="application/json")
def profile(user_id: str) -> str:
    return json.dumps({"user": user_id})


@server.completion()
async def complete(ref, argument, context):
    choices = {
        (PromptReference, "topic"): ["gateways", "gardens", "graphs"],
        (ResourceTemplateReference, "user_id"): ["alice", "albert", "bob"],
    }.get((type(ref), argument.name), [])
    return Completion(values=[c for c in choices if c.startswith(argument.value)])


@server.tool(description="Writes a note (with --tool-scope write_note=SCOPE, needs SCOPE).")
def write_note(text: str) -> str:
    return f"noted: {text}"


def scoped(inner):
    """Answers a call of the --tool-scope tool 403 insufficient_scope when the token lacks
    its scope, as a resource server asking for step-up does."""
    if not args.tool_scope:
        return inner
    tool, needed = args.tool_scope.split("=", 1)

    async def app_(scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await inner(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = {}
        if isinstance(request, dict) and request.get("method") == "tools/call" and (request.get("params") or {}).get("name") == tool:
            auth = dict(scope["headers"]).get(b"authorization", b"").decode()
            info = await verifier.verify_token(auth.removeprefix("Bearer ")) if auth else None
            if info is None or needed not in info.scopes:
                wanted = " ".join(sorted(set((args.required_scopes or "").split()) | {needed}))
                challenge = f'Bearer error="insufficient_scope", scope="{wanted}"'
                await send({"type": "http.response.start", "status": 403, "headers": [(b"content-type", b"application/json"), (b"www-authenticate", challenge.encode())]})
                await send({"type": "http.response.body", "body": b'{"error": "insufficient_scope"}'})
                return
        return await inner(scope, replay, send)

    return app_


def app():
    inner = scoped(server.sse_app() if args.transport == "sse" else server.streamable_http_app())
    if args.modern_only:
        inner = modern_only(inner)
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


def modern_only(inner):
    """Answers 400 to a POST without `Mcp-Protocol-Version: 2026-07-28`, as a server of that
    revision alone answers an `initialize`."""

    async def guarded(scope, receive, send):
        headers = dict(scope.get("headers") or [])
        if scope["type"] == "http" and scope["method"] == "POST" and headers.get(b"mcp-protocol-version") != b"2026-07-28":
            body = b'{"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "this server speaks 2026-07-28 only"}}'
            await send({"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
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
