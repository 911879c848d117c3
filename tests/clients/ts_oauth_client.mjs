// The official MCP TypeScript SDK signing in to Gatehouse through OAuth, headlessly.
//
//   node ts_oauth_client.mjs <mcp url> --session <jwt> --state <file> [--sdk v1|v2]
//        [--cimd <https client metadata URL>] [--expire] [--calls '[["tool", {args}], ...]']
//
// The SDK does discovery, registration (DCR, or a client ID metadata document with --cimd),
// PKCE and tokens; tests/clients/browser.mjs plays the browser. State (client, tokens) is kept
// in --state, so a second run reuses it; --expire spoils the stored access token first, so the
// second run has to refresh. Prints one JSON line.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { browse } from './browser.mjs';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    session: { type: 'string' },
    state: { type: 'string' },
    sdk: { type: 'string', default: 'v1' },
    cimd: { type: 'string' },
    expire: { type: 'boolean', default: false },
    calls: { type: 'string', default: '[]' },
  },
});
const MCP_URL = positionals[0];
const REDIRECT = 'http://127.0.0.1:8976/callback';

let Client, StreamableHTTPClientTransport, UnauthorizedError;
if (values.sdk === 'v2') {
  ({ Client, StreamableHTTPClientTransport, UnauthorizedError } = await import('@modelcontextprotocol/client'));
} else {
  ({ Client } = await import('@modelcontextprotocol/sdk/client/index.js'));
  ({ StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js'));
  ({ UnauthorizedError } = await import('@modelcontextprotocol/sdk/client/auth.js'));
}

const saved = fs.existsSync(values.state) ? JSON.parse(fs.readFileSync(values.state, 'utf8')) : {};
const persist = () => fs.writeFileSync(values.state, JSON.stringify(saved));
const events = { browsed: 0, registered: 0, invalidated: [] };
let pendingAuthUrl;

const provider = {
  get redirectUrl() {
    return REDIRECT;
  },
  get clientMetadata() {
    return {
      client_name: `TypeScript SDK ${values.sdk} test`,
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  },
  ...(values.cimd ? { clientMetadataUrl: values.cimd } : {}),
  state: () => (saved.state = crypto.randomUUID()),
  clientInformation: () => saved.client,
  saveClientInformation: (client) => {
    events.registered++;
    saved.client = client;
    persist();
  },
  tokens: () => saved.tokens,
  saveTokens: (tokens) => {
    saved.tokens = tokens;
    persist();
  },
  saveCodeVerifier: (verifier) => {
    saved.verifier = verifier;
  },
  codeVerifier: () => saved.verifier,
  saveDiscoveryState: (state) => {
    saved.discovery = state;
  },
  discoveryState: () => saved.discovery,
  redirectToAuthorization: (url) => {
    pendingAuthUrl = url;
  },
  invalidateCredentials: (scope) => {
    events.invalidated.push(scope);
    if (scope === 'all' || scope === 'client') delete saved.client;
    if (scope === 'all' || scope === 'tokens') delete saved.tokens;
    if (scope === 'all' || scope === 'verifier') delete saved.verifier;
    persist();
  },
};

if (values.expire && saved.tokens) saved.tokens.access_token = `spoiled.${saved.tokens.access_token}`;
const refreshTokenBefore = saved.tokens?.refresh_token;

async function connect(attempt = 0) {
  const client = new Client({ name: 'gatehouse-oauth-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider });
  try {
    await client.connect(transport);
    return { client, transport };
  } catch (e) {
    if (!(e instanceof UnauthorizedError) || !pendingAuthUrl || attempt > 1) throw e;
    const callback = await browse(pendingAuthUrl, values.session, (u) => u.href.startsWith(REDIRECT));
    pendingAuthUrl = undefined;
    events.browsed++;
    if (callback.searchParams.get('error')) throw new Error(`authorization refused: ${callback.search}`);
    if (callback.searchParams.get('state') !== saved.state) throw new Error('state mismatch');
    if (values.sdk === 'v2') await transport.finishAuth(callback.searchParams);
    else await transport.finishAuth(callback.searchParams.get('code'));
    return connect(attempt + 1);
  }
}

const { client, transport } = await connect();
const { tools } = await client.listTools();
const whoami = await client.callTool({ name: 'whoami', arguments: {} });
const results = [];
for (const [name, args] of JSON.parse(values.calls)) results.push(await client.callTool({ name, arguments: args }));
if (transport.sessionId) await transport.terminateSession();
await client.close();
console.log(
  JSON.stringify({
    sdk: values.sdk,
    clientId: saved.client?.client_id ?? null,
    tools: tools.map((t) => t.name),
    whoami: whoami.structuredContent,
    results,
    // A stored refresh token that changed without a new sign-in: the SDK refreshed.
    refreshed: Boolean(refreshTokenBefore) && saved.tokens?.refresh_token !== refreshTokenBefore && events.browsed === 0,
    ...events,
  }),
);
