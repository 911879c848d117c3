// An MCP client on the official TypeScript SDK that an upstream server uses through
// Gatehouse: it answers elicitation (form), sampling and roots requests, hears progress and
// log messages, and calls the tools that cause them.
//
//   node ts_relay_client.mjs <url> --token T --era legacy|modern --server NAME [--no-sampling] [--tools a,b]
//
// legacy: @modelcontextprotocol/sdk 1.x (2025-11-25 sessions); modern:
// @modelcontextprotocol/client 2.x pinned to 2026-07-28. Prints one JSON line: each call's
// texts and whether it was an error, the progress and the log messages that arrived, and what
// the upstream asked of this client.
import { parseArgs } from 'node:util';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    era: { type: 'string', default: 'legacy' },
    token: { type: 'string' },
    server: { type: 'string' },
    'no-sampling': { type: 'boolean', default: false },
    tools: { type: 'string', default: 'count,ask_colour,haiku,roots' },
  },
});
const url = new URL(positionals[0]);
const requestInit = { headers: { Authorization: `Bearer ${values.token}` } };
const info = { name: 'gatehouse-ts-relay-test', version: '1.0.0' };
const capabilities = { elicitation: { form: {} }, roots: {} };
if (!values['no-sampling']) capabilities.sampling = {};
const s = values.server;

const asked = [];
const logs = [];
const elicit = async (request) => {
  asked.push(`elicitation: ${request.params.message}`);
  return { action: 'accept', content: { colour: 'teal' } };
};
const sample = async (request) => {
  const text = request.params.messages[0].content.text;
  asked.push(`sampling: ${text}`);
  return { role: 'assistant', content: { type: 'text', text: `leaves fall (${text})` }, model: 'test-model', stopReason: 'endTurn' };
};
const roots = async () => {
  asked.push('roots');
  return { roots: [{ uri: 'file:///work/project', name: 'project' }] };
};

let client, transport;
if (values.era === 'modern') {
  const { Client, StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client');
  transport = new StreamableHTTPClientTransport(url, { requestInit });
  client = new Client(info, { capabilities, versionNegotiation: { mode: { pin: '2026-07-28' } } });
  client.setRequestHandler('elicitation/create', elicit);
  if (capabilities.sampling) client.setRequestHandler('sampling/createMessage', sample);
  client.setRequestHandler('roots/list', roots);
} else {
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
  const types = await import('@modelcontextprotocol/sdk/types.js');
  transport = new StreamableHTTPClientTransport(url, { requestInit });
  client = new Client(info, { capabilities });
  client.setRequestHandler(types.ElicitRequestSchema, elicit);
  if (capabilities.sampling) client.setRequestHandler(types.CreateMessageRequestSchema, sample);
  client.setRequestHandler(types.ListRootsRequestSchema, roots);
  client.setNotificationHandler(types.LoggingMessageNotificationSchema, (n) => logs.push(n.params.data));
}
await client.connect(transport);
const progress = [];
const results = {};
for (const tool of values.tools.split(',')) {
  const args = tool === 'haiku' ? { topic: 'autumn' } : {};
  const options = tool === 'count' ? { onprogress: (p) => progress.push([p.progress, p.total, p.message ?? null]) } : undefined;
  try {
    const params = { name: `${s}__${tool}`, arguments: args };
    // 1.x: callTool(params, resultSchema, options); 2.x: callTool(params, options).
    const r = values.era === 'modern'
      ? await client.callTool(params, options)
      : await client.callTool(params, undefined, options);
    results[tool] = { isError: Boolean(r.isError), text: r.content.map((c) => c.text).join('\n') };
  } catch (e) {
    results[tool] = { isError: true, text: `protocol error: ${e.message}` };
  }
}
if (transport.sessionId) await transport.terminateSession();
await client.close();
console.log(JSON.stringify({ results, progress, logs, asked }));
