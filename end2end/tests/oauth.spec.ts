import { test, expect, hydrated } from '../support/fixtures';
import { urls } from '../support/servers';
import { CALLBACK, authorizeUrl, captureCallback, connectClient, exchange, pkce, registerClient, signIn, whoami } from '../support/oauth';

test.describe('OAuth for MCP clients', () => {
  test('the consent page lets the user allow a client, which can then call tools', async ({ page, request }) => {
    const name = `Consent client ${Date.now()}`;
    const clientId = await registerClient(request, name);
    await signIn(page);
    const { verifier, challenge } = pkce();
    const callback = await captureCallback(page);
    await page.goto(authorizeUrl(clientId, challenge, 'state-1'));

    await expect(page.getByTestId('consent-title')).toContainText(name);
    await expect(page.getByTestId('consent-user')).toHaveText('admin');
    await expect(page.getByTestId('consent-redirect')).toHaveText('127.0.0.1:47999');
    await expect(page.getByTestId('warn-loopback')).toBeVisible();
    await expect(page.getByTestId('warn-new')).toBeVisible();
    await hydrated(page);
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${CALLBACK}**`);

    const back = callback();
    expect(back.searchParams.get('state')).toBe('state-1');
    expect(back.searchParams.get('iss')).toBe(urls.basic);
    const tokens = await (await exchange(request, clientId, back.searchParams.get('code')!, verifier)).json();
    const me = await whoami(request, tokens.access_token);
    expect(me.status()).toBe(200);
    expect((await me.json()).result.structuredContent.client.name).toBe(name);
  });

  test('Sessions: revoking a session stops its tokens', async ({ page, request }) => {
    const name = `Session client ${Date.now()}`;
    const clientId = await registerClient(request, name);
    await signIn(page);
    const tokens = await connectClient(page, request, clientId);
    expect((await whoami(request, tokens.access_token)).status()).toBe(200);

    await page.goto(`${urls.basic}/settings/sessions`);
    await hydrated(page);
    const row = page.getByTestId('session-row').filter({ hasText: name });
    await expect(row).toContainText('admin');
    await row.getByRole('button', { name: `Revoke the session of ${name} for admin` }).click();
    const dialog = page.getByRole('dialog', { name: `Revoke the session of ${name}?` });
    await dialog.getByRole('button', { name: 'Revoke session' }).click();
    await expect(dialog).toBeHidden();
    await expect(row).toHaveCount(0);

    expect((await whoami(request, tokens.access_token)).status()).toBe(401);
    const refresh = await request.post(`${urls.basic}/mcp/oauth/token`, {
      form: { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: clientId },
    });
    expect((await refresh.json()).error).toBe('invalid_grant');
  });

  test('OAuth Clients: revoke consent, then delete the client', async ({ page, request }) => {
    const name = `Managed client ${Date.now()}`;
    const clientId = await registerClient(request, name);
    await signIn(page);
    const tokens = await connectClient(page, request, clientId);

    await page.goto(`${urls.basic}/settings/oauth-clients`);
    await hydrated(page);
    const row = page.getByTestId('client-row').filter({ hasText: name });
    await expect(row.getByTestId('client-consented')).toContainText('Yes (1 user, 1 session)');

    await row.getByRole('button', { name: `Revoke consent for ${name}` }).click();
    await page.getByRole('dialog', { name: `Revoke consent for ${name}?` }).getByRole('button', { name: 'Revoke consent' }).click();
    await expect(row.getByTestId('client-consented')).toHaveText('No');
    const refresh = await request.post(`${urls.basic}/mcp/oauth/token`, {
      form: { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: clientId },
    });
    expect((await refresh.json()).error).toBe('invalid_grant');

    await row.getByRole('button', { name: `Delete client ${name}` }).click();
    const dialog = page.getByRole('dialog', { name: `Delete ${name}?` });
    await expect(dialog).toContainText('Quit the MCP client');
    await dialog.getByRole('button', { name: 'Delete client' }).click();
    await expect(row).toHaveCount(0);

    const gone = await request.post(`${urls.basic}/mcp/oauth/token`, {
      form: { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: clientId },
    });
    expect(gone.status()).toBe(401);
    expect((await gone.json()).error).toBe('invalid_client');
  });
});

test.describe('OAuth consent with JavaScript off', () => {
  test.use({ javaScriptEnabled: false });

  test('the plain form allows and cancels', async ({ page, request }) => {
    const clientId = await registerClient(request, `No-JS client ${Date.now()}`);
    await signIn(page);

    const denied = pkce();
    let callback = await captureCallback(page);
    await page.goto(authorizeUrl(clientId, denied.challenge, 'cancel-me'));
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.waitForURL(`${CALLBACK}**`);
    expect(callback().searchParams.get('error')).toBe('access_denied');
    expect(callback().searchParams.get('state')).toBe('cancel-me');

    const allowed = pkce();
    callback = await captureCallback(page);
    await page.goto(authorizeUrl(clientId, allowed.challenge, 'allow-me'));
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${CALLBACK}**`);
    const response = await exchange(request, clientId, callback().searchParams.get('code')!, allowed.verifier);
    expect(response.status()).toBe(200);
  });
});
