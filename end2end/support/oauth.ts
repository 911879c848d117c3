import { createHash, randomBytes } from 'node:crypto';
import type { APIRequestContext, Page } from '@playwright/test';
import { postToolCall } from './mcp';
import { basicCredentials, urls } from './servers';

export const CALLBACK = 'http://127.0.0.1:47999/callback';

export async function signIn(page: Page, next = '/') {
  await page.goto(`${urls.basic}/login?next=${encodeURIComponent(next)}`);
  await page.getByLabel('Username').fill(basicCredentials.username);
  await page.getByLabel('Password', { exact: true }).fill(basicCredentials.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${urls.basic}${next}`);
}

/** Registers a public native client through dynamic client registration. */
export async function registerClient(request: APIRequestContext, name: string): Promise<string> {
  const response = await request.post(`${urls.basic}/mcp/oauth/register`, {
    data: { client_name: name, redirect_uris: [CALLBACK], application_type: 'native', grant_types: ['authorization_code', 'refresh_token'] },
  });
  if (response.status() !== 201) throw new Error(`registration failed: ${response.status()} ${await response.text()}`);
  return (await response.json()).client_id;
}

export function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

export function authorizeUrl(clientId: string, challenge: string, state: string) {
  const url = new URL(`${urls.basic}/mcp/oauth/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: CALLBACK,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    scope: 'mcp',
    resource: `${urls.basic}/mcp`,
  }).toString();
  return url.toString();
}

/**
 * Captures the redirect to the client's callback. Nothing listens there, so the whole
 * origin is answered here: the browser also asks it for /favicon.ico, and a refused
 * connection would show up as a console error.
 */
export async function captureCallback(page: Page): Promise<() => URL> {
  let seen: URL | undefined;
  const origin = new URL(CALLBACK).origin;
  await page.route(`${origin}/**`, async (route) => {
    const url = new URL(route.request().url());
    if (url.pathname !== new URL(CALLBACK).pathname) {
      await route.fulfill({ status: 204 });
      return;
    }
    seen = url;
    await route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>callback</title><p>ok</p>' });
  });
  return () => {
    if (!seen) throw new Error('the callback was not reached');
    return seen;
  };
}

export async function exchange(request: APIRequestContext, clientId: string, code: string, verifier: string) {
  const response = await request.post(`${urls.basic}/mcp/oauth/token`, {
    form: { grant_type: 'authorization_code', code, redirect_uri: CALLBACK, client_id: clientId, code_verifier: verifier },
  });
  return response;
}

/** Calls the whoami tool with a Bearer token (2026-07-28, stateless). */
export async function whoami(request: APIRequestContext, token: string) {
  return postToolCall(request, urls.basic, token, 'whoami');
}

/** The whole flow, consenting in the page: returns the token response. */
export async function connectClient(page: Page, request: APIRequestContext, clientId: string) {
  const { verifier, challenge } = pkce();
  const callback = await captureCallback(page);
  await page.goto(authorizeUrl(clientId, challenge, 'st'));
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL(`${CALLBACK}**`);
  const code = callback().searchParams.get('code')!;
  const response = await exchange(request, clientId, code, verifier);
  if (response.status() !== 200) throw new Error(`token exchange failed: ${await response.text()}`);
  return response.json();
}
