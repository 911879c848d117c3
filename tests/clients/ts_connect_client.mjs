// An MCP client on the official TypeScript SDK that declares URL elicitation and follows a
// "connect your account" link the way an application does: it shows the link (prints it as a
// JSON line), waits for the user to come back (a line on stdin), and goes on.
//
//   node ts_connect_client.mjs <url> --token T --era legacy|modern --tool NAME
//
// legacy: @modelcontextprotocol/sdk 1.x (2025-11-25 sessions). The call fails with -32042
//   (UrlElicitationRequiredError) carrying the link; once the user is back the client waits for
//   notifications/elicitation/complete with that elicitation's id, then calls again.
// modern: @modelcontextprotocol/client 2.x pinned to 2026-07-28. The SDK hands the link to the
//   elicitation/create handler inside the input_required rounds; the handler accepts once the
//   user is back, and the SDK retries the call with the sealed requestState.
//
// Prints one last JSON line: the final result's texts, whether it was an error, the links it
// was sent, and the notifications that arrived.
import { parseArgs } from 'node:util';
import readline from 'node:readline';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    era: { type: 'string', default: 'legacy' },
    token: { type: 'string' },
    tool: { type: 'string' },
  },
});
const url = new URL(positionals[0]);
const requestInit = { headers: { Authorization: `Bearer ${values.token}` } };
const info = { name: 'gatehouse-ts-connect-test', version: '1.0.0' };
const capabilities = { elicitation: { url: {} } };

const stdin = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const userIsBack = () => stdin.next();

const links = [];
const notifications = [];
const completed = new Set();
let arrived = () => {};
const show = (elicitation) => {
  links.push({ url: elicitation.url, mode: elicitation.mode, elicitationId: elicitation.elicitationId ?? null });
  console.log(JSON.stringify({ link: elicitation.url }));
};

let client, transport;
if (values.era === 'modern') {
  const { Client, StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client');
  transport = new StreamableHTTPClientTransport(url, { requestInit });
  client = new Client(info, { capabilities, versionNegotiation: { mode: { pin: '2026-07-28' } } });
  client.setRequestHandler('elicitation/create', async (request) => {
    show(request.params);
    await userIsBack();
    return { action: 'accept' };
  });
} else {
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
  const types = await import('@modelcontextprotocol/sdk/types.js');
  transport = new StreamableHTTPClientTransport(url, { requestInit });
  client = new Client(info, { capabilities });
  client.setRequestHandler(types.ElicitRequestSchema, async () => ({ action: 'decline' }));
  client.setNotificationHandler(types.ElicitationCompleteNotificationSchema, (n) => {
    notifications.push(n.method);
    completed.add(n.params.elicitationId);
    arrived();
  });
  client.setNotificationHandler(types.ToolListChangedNotificationSchema, (n) => notifications.push(n.method));
}
await client.connect(transport);

const call = () => client.callTool({ name: values.tool, arguments: {} });
let result;
try {
  result = await call();
} catch (e) {
  if (e.code !== -32042) throw e;
  const elicitations = e.data?.elicitations ?? [];
  elicitations.forEach(show);
  await userIsBack();
  const wanted = elicitations.map((el) => el.elicitationId);
  const deadline = Date.now() + 20_000;
  while (!wanted.every((id) => completed.has(id))) {
    if (Date.now() > deadline) throw new Error('notifications/elicitation/complete did not arrive');
    await new Promise((resolve) => {
      arrived = resolve;
      setTimeout(resolve, 200);
    });
  }
  result = await call();
}
console.log(
  JSON.stringify({
    sdk: values.era === 'modern' ? '@modelcontextprotocol/client' : '@modelcontextprotocol/sdk',
    protocolVersion: client.getNegotiatedProtocolVersion?.() ?? transport.protocolVersion ?? null,
    isError: result.isError === true,
    texts: result.content.filter((c) => c.type === 'text').map((c) => c.text),
    links,
    notifications,
  }),
);
await client.close();
process.exit(0);
