import { expect, type APIRequestContext, type Page } from '@playwright/test';
import { postToolCall } from './mcp';
import { urls } from './servers';

// The oauth2 instance names its admins by group (AUTH_OAUTH2_ADMIN_GROUPS=admins); the test
// provider puts an address with "+admins" (e.g. "ada+admins@example.com") in "admins".
// Everyone else it lets in is a member.
export async function signInAs(page: Page, email: string, path = '/') {
  await page.goto(`${urls.oauth2}${path}`);
  await expect(page).toHaveURL(/\/login/);
  await page.getByRole('link', { name: 'Sign in with 127.0.0.1' }).click();
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(`${urls.oauth2}${path}`);
}

export const nav = (page: Page) => page.getByRole('navigation', { name: 'Main' });

/**
 * As an admin (through the API, as a script would): a per-person connection at the test
 * provider and the test upstream behind it, named `server`. Returns the connection's id.
 */
export async function perPersonServer(admin: APIRequestContext, name: string, server: string) {
  const created = await admin.post(`${urls.oauth2}/api/v0/connections`, {
    data: {
      name,
      client_id: 'gatehouse-connections',
      client_secret: 'gatehouse-connections-secret',
      authorization_url: `${urls.oidc}/auth`,
      token_url: `${urls.oidc}/token`,
      revocation_url: `${urls.oidc}/token/revocation`,
      scopes: ['openid', 'read'],
      pkce: true,
      resource: `${urls.oidc}/api`,
      per_person: true,
    },
  });
  expect(created.status()).toBe(201);
  const id = (await created.json()).id as string;
  const added = await admin.post(`${urls.oauth2}/api/v0/mcp-servers`, {
    data: { name: server, url: `${urls.upstream}/mcp`, auth: 'connection', connection_id: id, timeout_secs: 10 },
  });
  expect(added.status()).toBe(201);
  return id;
}

/** An MCP token of the signed-in person's own. */
export async function mcpToken(request: APIRequestContext) {
  const created = await request.post(`${urls.oauth2}/api/v0/settings/mcp/tokens`, {
    data: { name: 'e2e client', scopes: ['mcp'] },
  });
  expect(created.status()).toBe(201);
  return (await created.json()).token as string;
}

/** A 2026-07-28 `tools/call` through the gateway, from a client without URL elicitation. */
export async function callTool(request: APIRequestContext, token: string, name: string) {
  const answer = await postToolCall(request, urls.oauth2, token, name);
  expect(answer.status()).toBe(200);
  const result = (await answer.json()).result;
  return { isError: result.isError === true, text: result.content[0].text as string };
}

/**
 * A 2025-11-25 MCP session of the token's person with its stream open: `heard()` is what the
 * stream has carried so far.
 */
export async function openSessionStream(token: string) {
  const base = {
    authorization: `Bearer ${token}`,
    accept: 'application/json, text/event-stream',
    'content-type': 'application/json',
  };
  const init = await fetch(`${urls.oauth2}/mcp`, {
    method: 'POST',
    headers: base,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'e2e', version: '1' } },
    }),
  });
  expect(init.status).toBe(200);
  const session = init.headers.get('mcp-session-id')!;
  const headers = { ...base, 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' };
  const initialized = await fetch(`${urls.oauth2}/mcp`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  expect(initialized.status).toBe(202);
  const controller = new AbortController();
  const stream = await fetch(`${urls.oauth2}/mcp`, { headers, signal: controller.signal });
  expect(stream.status).toBe(200);
  let text = '';
  const reader = stream.body!.getReader();
  const decoder = new TextDecoder();
  (async () => {
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done) return;
      text += decoder.decode(value);
    }
  })();
  return { heard: () => text, close: () => controller.abort() };
}
