// The official TypeScript SDK (1.x) as the MCP client of Gatehouse's gateway, for tests.
//
//   node ts_gateway_client.mjs <url> --token T --calls '[["tool", {args}], ...]'
//
// Connects with the token as a Bearer header, lists the tools, calls each tool in order and
// prints one JSON line: {"tools": [{name, description, inputSchema}], "results": [CallToolResult]}.
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { token: { type: 'string' }, calls: { type: 'string', default: '[]' } },
});
const transport = new StreamableHTTPClientTransport(new URL(positionals[0]), {
  requestInit: { headers: { Authorization: `Bearer ${values.token}` } },
});
const client = new Client({ name: 'gatehouse-gateway-test', version: '1.0.0' });
await client.connect(transport);
const tools = (await client.listTools()).tools;
const results = [];
for (const [name, args] of JSON.parse(values.calls)) {
  results.push(await client.callTool({ name, arguments: args }));
}
if (transport.sessionId) await transport.terminateSession();
await client.close();
console.log(JSON.stringify({ tools: tools.map(({ name, description, inputSchema }) => ({ name, description, inputSchema })), results }));
