// An MCP client built on the official TypeScript SDK, for Gatehouse's tests.
//
//   node ts_client.mjs <url> --era legacy|modern [--token T --via header|query]
//
// legacy: @modelcontextprotocol/sdk 1.x (initialize handshake, Mcp-Session-Id).
// modern: @modelcontextprotocol/client 2.x pinned to 2026-07-28 (stateless).
// Connects, lists tools, calls whoami and a tool with bad arguments, then prints one JSON line.
import { parseArgs } from 'node:util';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { era: { type: 'string', default: 'legacy' }, token: { type: 'string' }, via: { type: 'string', default: 'header' } },
});
const url = new URL(positionals[0]);
const requestInit = {};
if (values.token && values.via === 'query') url.searchParams.set('token', values.token);
if (values.token && values.via === 'header') requestInit.headers = { Authorization: `Bearer ${values.token}` };

let Client, StreamableHTTPClientTransport, clientOptions;
if (values.era === 'modern') {
  ({ Client, StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client'));
  clientOptions = { versionNegotiation: { mode: { pin: '2026-07-28' } } };
} else {
  ({ Client } = await import('@modelcontextprotocol/sdk/client/index.js'));
  ({ StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js'));
  clientOptions = {};
}

const transport = new StreamableHTTPClientTransport(url, { requestInit });
const client = new Client({ name: 'gatehouse-ts-test', version: '1.0.0' }, clientOptions);
await client.connect(transport);
const tools = (await client.listTools()).tools;
const whoami = await client.callTool({ name: 'whoami', arguments: {} });
const bad = await client.callTool({ name: 'gatehouse_status', arguments: { sections: 'everything' } });
const result = {
  sdk: values.era === 'modern' ? '@modelcontextprotocol/client' : '@modelcontextprotocol/sdk',
  protocolVersion: client.getNegotiatedProtocolVersion?.() ?? transport.protocolVersion ?? null,
  sessionId: transport.sessionId ?? null,
  tools: tools.map((t) => t.name),
  schemas: Object.fromEntries(tools.map((t) => [t.name, t.inputSchema])),
  whoami: whoami.structuredContent,
  badArguments: { isError: bad.isError ?? false, text: bad.content?.[0]?.text ?? null },
};
if (transport.sessionId) await transport.terminateSession();
await client.close();
console.log(JSON.stringify(result));
