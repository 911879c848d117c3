import type { APIRequestContext } from '@playwright/test';

/** A 2026-07-28 `tools/call` to `{base}/mcp` from a client that declares no capability. */
export function postToolCall(request: APIRequestContext, base: string, token: string, name: string) {
  return request.post(`${base}/mcp`, {
    headers: {
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': name,
      authorization: `Bearer ${token}`,
    },
    data: {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: {
        name,
        arguments: {},
        _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} },
      },
    },
  });
}
