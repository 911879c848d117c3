// An MCP client on the official TypeScript SDK that uses what Gatehouse relays besides tools:
// prompts, resources, resource templates and completions.
//
//   node ts_offers_client.mjs <url> --token T --era legacy|modern --server NAME
//
// legacy: @modelcontextprotocol/sdk 1.x (2025-11-25 sessions); modern:
// @modelcontextprotocol/client 2.x pinned to 2026-07-28. Prints one JSON line: the prompt and
// resource names and URIs it was listed, a prompt's messages, the texts of two reads (a
// resource and a template's expansion), and two completions.
import { parseArgs } from 'node:util';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    era: { type: 'string', default: 'legacy' },
    token: { type: 'string' },
    server: { type: 'string' },
  },
});
const url = new URL(positionals[0]);
const requestInit = { headers: { Authorization: `Bearer ${values.token}` } };
const info = { name: 'gatehouse-ts-offers-test', version: '1.0.0' };
const s = values.server;

let client, transport;
if (values.era === 'modern') {
  const { Client, StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client');
  transport = new StreamableHTTPClientTransport(url, { requestInit });
  client = new Client(info, { capabilities: {}, versionNegotiation: { mode: { pin: '2026-07-28' } } });
} else {
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
  transport = new StreamableHTTPClientTransport(url, { requestInit });
  client = new Client(info, { capabilities: {} });
}
await client.connect(transport);
const prompts = await client.listPrompts();
const resources = await client.listResources();
const templates = await client.listResourceTemplates();
const prompt = await client.getPrompt({ name: `${s}__summarize`, arguments: { topic: 'gateways' } });
const readme = await client.readResource({ uri: `gatehouse://${s}/file:///docs/readme.md` });
const profile = await client.readResource({ uri: `gatehouse://${s}/users://alice/profile` });
const topic = await client.complete({ ref: { type: 'ref/prompt', name: `${s}__summarize` }, argument: { name: 'topic', value: 'ga' } });
const user = await client.complete({
  ref: { type: 'ref/resource', uri: `gatehouse://${s}/users://{user_id}/profile` },
  argument: { name: 'user_id', value: 'al' },
});
if (transport.sessionId) await transport.terminateSession();
await client.close();
console.log(JSON.stringify({
  prompts: prompts.prompts.map((p) => p.name),
  resources: resources.resources.map((r) => r.uri),
  templates: templates.resourceTemplates.map((t) => t.uriTemplate),
  prompt: prompt.messages.map((m) => m.content.text),
  reads: [readme, profile].flatMap((r) => r.contents.map((c) => ({ uri: c.uri, text: c.text }))),
  completions: [topic.completion.values, user.completion.values],
}));
