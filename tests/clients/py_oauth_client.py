"""The official MCP Python SDK (`mcp`) signing in to Gatehouse through OAuth, headlessly.

    python py_oauth_client.py <mcp url> --mode legacy|2026-07-28 --session <gatehouse session JWT>

The SDK does discovery, dynamic registration, PKCE and token handling, with its strict checks
(exact issuer, RFC 9207 `iss`). The "browser" is played here: the authorization URL is opened
with the Gatehouse session cookie, the consent form is answered, and the code from the
redirect goes back to the SDK. Prints one JSON line.
"""

import argparse
import asyncio
import json
import re
from urllib.parse import parse_qs, urljoin, urlparse

import httpx2
from pydantic import AnyUrl

from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REDIRECT_URI = "http://127.0.0.1:33418/callback"


class MemoryStorage(TokenStorage):
    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull):
        self.client_info = client_info


async def browse(authorize_url: str, session: str) -> AuthorizationCodeResult:
    """Opens the authorization URL as the signed-in user and allows the client."""
    cookies = {"gatehouse_session": session}
    async with httpx2.AsyncClient(cookies=cookies, follow_redirects=False) as http:
        response = await http.get(authorize_url)
        location = response.headers["location"]
        if location.startswith("/mcp/oauth/consent"):
            page = await http.get(urljoin(authorize_url, location))
            csrf = re.search(r'name="csrf" value="([^"]+)"|value="([^"]+)" name="csrf"', page.text)
            request = parse_qs(urlparse(location).query)["request"][0]
            decided = await http.post(
                urljoin(authorize_url, "/mcp/oauth/consent"),
                data={"request": request, "csrf": csrf.group(1) or csrf.group(2), "decision": "allow"},
            )
            location = decided.headers["location"]
        query = parse_qs(urlparse(location).query)
        return AuthorizationCodeResult(code=query["code"][0], state=query.get("state", [None])[0], iss=query.get("iss", [None])[0])


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--mode", default="legacy")
    parser.add_argument("--session", required=True)
    args = parser.parse_args()

    pending = {}
    browsed = []

    async def redirect_handler(authorize_url: str):
        browsed.append(authorize_url)
        pending["result"] = await browse(authorize_url, args.session)

    async def callback_handler():
        return pending.pop("result")

    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=args.url,
        client_metadata=OAuthClientMetadata(client_name="Python SDK test", redirect_uris=[AnyUrl(REDIRECT_URI)]),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(30.0)) as http:
        async with Client(streamable_http_client(args.url, http_client=http), mode=args.mode) as client:
            tools = (await client.list_tools()).tools
            whoami = await client.call_tool("whoami", {})
            print(
                json.dumps(
                    {
                        "sdk": "mcp (Python)",
                        "protocolVersion": str(client.protocol_version),
                        "browsed": len(browsed),
                        "authorizeUrl": browsed[0] if browsed else None,
                        "clientId": storage.client_info.client_id if storage.client_info else None,
                        "tools": [t.name for t in tools],
                        "whoami": whoami.structured_content,
                    }
                )
            )


asyncio.run(main())
