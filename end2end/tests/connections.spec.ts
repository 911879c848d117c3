import { test, expect, hydrated } from '../support/fixtures';
import { urls } from '../support/servers';
import { signIn } from '../support/oauth';

test.describe('Connections', () => {
  test('create a custom provider, connect it in a popup, see it connected', async ({ page }) => {
    const name = `Acme ${Date.now()}`;
    await signIn(page, '/connections');
    await hydrated(page);
    await expect(page.getByTestId('redirect-uri')).toHaveText(`${urls.basic}/connections/oauth/callback`);

    await page.getByTestId('new-connection').click();
    await page.getByTestId('provider-chooser').getByRole('button', { name: 'Custom provider' }).click();
    const dialog = page.getByTestId('connection-dialog');
    await dialog.getByLabel('Name').fill(name);
    await dialog.getByLabel('Client ID').fill('gatehouse-connections');
    await dialog.getByLabel('Client secret').fill('gatehouse-connections-secret');
    await dialog.getByLabel('Authorization URL').fill(`${urls.oidc}/auth`);
    // Pasted with a query string: it is removed, and the user is told.
    await dialog.getByLabel('Token URL').fill(`${urls.oidc}/token?grant_type=authorization_code`);
    await dialog.getByLabel('Default scopes (one per line)').fill('openid\nread');
    await dialog.getByText('Advanced configuration').click();
    await dialog.getByLabel('Revocation URL (RFC 7009)').fill(`${urls.oidc}/token/revocation`);
    await dialog.getByLabel('Introspection URL (RFC 7662)').fill(`${urls.oidc}/token/introspection`);
    await dialog.getByLabel('Resource indicator (RFC 8707)').fill(`${urls.oidc}/api`);
    await dialog.getByRole('button', { name: 'Save' }).click();
    await expect(page.getByTestId('connections-notice')).toContainText('query string was removed');

    const card = page.locator(`[data-testid="connection-card"][data-name="${name}"]`);
    await expect(card.getByTestId('connection-status')).toHaveText('Not connected');

    const popupOpened = page.waitForEvent('popup');
    await card.getByRole('button', { name: `Connect ${name}` }).click();
    const popup = await popupOpened;
    await popup.waitForURL(`${urls.oidc}/interaction/**`);
    await popup.getByLabel('Email').fill('ops@example.com');
    await popup.getByRole('button', { name: 'Sign in' }).click();
    // The callback page tells this page and closes itself.
    await popup.waitForEvent('close');

    await expect(page.getByTestId('connections-notice')).toHaveText('Connected.');
    await expect(card.getByTestId('connection-status')).toHaveText('Connected');
    await expect(card.getByTestId('connection-expiry')).toContainText('Token expires');

    // A worker asks for a fresh token (as after a 401): Gatehouse refreshes at the provider,
    // and the page shows it.
    const id = await card.getAttribute('data-id');
    const fresh = await page.request.post(`${urls.basic}/api/v0/connections/${id}/token?force=true`);
    expect(fresh.status()).toBe(200);
    expect((await fresh.json()).refresh_token).toBeUndefined();
    await page.reload();
    await hydrated(page);
    await expect(card.getByTestId('connection-expiry')).toContainText('refreshed');
    // Health at a glance: the last refresh, when the next one is due, no failures.
    await expect(card.getByTestId('connection-health')).toHaveText(/^refreshed just now · next refresh (in \d+ (s|min|h)|due now)$/);
    await expect(card.getByRole('button', { name: `Connect ${name}` })).toHaveText('Re-authorize');

    // Re-authorize: the same connection, a new grant (a new grant has not been refreshed).
    await card.getByRole('button', { name: `Connect ${name}` }).click();
    const reauth = page.getByTestId('reauthorize-dialog');
    await expect(reauth.getByLabel('Client ID')).toHaveValue('gatehouse-connections');
    await expect(reauth.getByLabel('Scopes (one per line)')).toHaveValue('openid\nread');
    const again = page.waitForEvent('popup');
    await reauth.getByRole('button', { name: 'Re-authorize' }).click();
    const second = await again;
    if (!second.isClosed()) await second.waitForEvent('close');
    await expect(card.getByTestId('connection-expiry')).not.toContainText('refreshed');
    await expect(card.getByTestId('connection-health')).toContainText('never refreshed');
    await expect(card.getByTestId('connection-status')).toHaveText('Connected');

    await card.getByRole('button', { name: 'Introspect' }).click();
    await expect(page.getByTestId('introspection-active')).toHaveText('The provider says the token is active.');
    await expect(page.getByTestId('provider-json')).toContainText('"active": true');
    await page.getByRole('button', { name: 'Close' }).click();

    await card.getByRole('button', { name: 'Disconnect' }).click();
    await page.getByTestId('disconnect-dialog').getByRole('button', { name: 'Disconnect' }).click();
    await expect(card.getByTestId('connection-status')).toHaveText('Not connected');
  });
});

test.describe('Connections with built-in providers', () => {
  test('the dialog shows the provider\'s fields, scopes and warnings, and refuses a bad shop', async ({ page, consoleErrors }) => {
    await signIn(page, '/connections');
    await hydrated(page);

    await page.getByTestId('new-connection').click();
    await page.getByTestId('provider-chooser').getByRole('button', { name: /Atlassian/ }).click();
    const atlassian = page.getByTestId('builtin-dialog');
    await expect(atlassian.getByTestId('builtin-redirect-uri')).toHaveText(`${urls.basic}/connections/oauth/callback`);
    await expect(atlassian.getByLabel(/Cloud ID/)).toBeVisible();
    await expect(atlassian.getByLabel('Token URL')).toHaveCount(0);
    await expect(atlassian.getByTestId('scope-warning')).toHaveCount(0);
    await atlassian.getByRole('checkbox', { name: /offline_access/ }).uncheck();
    await expect(atlassian.getByTestId('scope-warning')).toContainText('offline_access');
    await atlassian.getByRole('button', { name: 'Cancel' }).click();

    await page.getByTestId('new-connection').click();
    await page.getByTestId('provider-chooser').getByRole('button', { name: 'Shopify' }).click();
    const shopify = page.getByTestId('builtin-dialog');
    const name = `Shop ${Date.now()}`;
    await shopify.getByLabel('Name').fill(name);
    await shopify.getByLabel('Shop subdomain').fill('evil.com/x');
    await shopify.getByLabel('Client ID').fill('id');
    await shopify.getByLabel('Client secret').fill('secret');
    await shopify.getByRole('button', { name: 'Save' }).click();
    await expect(shopify.getByRole('alert')).toContainText('Shop subdomain');
    await shopify.getByLabel('Shop subdomain').fill('my-store');
    await shopify.getByRole('button', { name: 'Save' }).click();
    const card = page.locator(`[data-testid="connection-card"][data-name="${name}"]`);
    await expect(card).toContainText('https://my-store.myshopify.com/admin/oauth/access_token');
    // The refused save is the one expected failed request.
    const expected = consoleErrors.filter((e) => e.includes('status of 400'));
    expect(expected).toHaveLength(1);
    consoleErrors.splice(0, consoleErrors.length, ...consoleErrors.filter((e) => !expected.includes(e)));
  });
});

test.describe('A built-in provider re-pointed at the test provider', () => {
  test('Sentry connects through the popup', async ({ page }) => {
    const name = `Sentry ${Date.now()}`;
    await signIn(page, '/connections');
    await hydrated(page);
    await page.getByTestId('new-connection').click();
    await page.getByTestId('provider-chooser').getByRole('button', { name: 'Sentry' }).click();
    const dialog = page.getByTestId('builtin-dialog');
    await dialog.getByLabel('Name').fill(name);
    await dialog.getByLabel('Client ID').fill('gatehouse-connections');
    await dialog.getByLabel('Client secret').fill('gatehouse-connections-secret');
    await expect(dialog.getByRole('checkbox', { name: /read/ })).toBeChecked();
    await dialog.getByRole('button', { name: 'Save' }).click();

    const card = page.locator(`[data-testid="connection-card"][data-name="${name}"]`);
    await expect(card).toContainText('PKCE');
    const popupOpened = page.waitForEvent('popup');
    await card.getByRole('button', { name: `Connect ${name}` }).click();
    const popup = await popupOpened;
    await popup.waitForURL(`${urls.oidc}/interaction/**`);
    await popup.getByLabel('Email').fill('ops@example.com');
    await popup.getByRole('button', { name: 'Sign in' }).click();
    await popup.waitForEvent('close');
    await expect(card.getByTestId('connection-status')).toHaveText('Connected');

    // Editing a built-in connection changes the client and scopes, not the definition.
    await card.getByRole('button', { name: 'Edit' }).click();
    const edit = page.getByTestId('connection-dialog');
    await expect(edit.getByTestId('builtin-note')).toContainText('sentry');
    await expect(edit.getByLabel('Token URL')).toHaveCount(0);
    await expect(edit.getByLabel('Client ID')).toHaveValue('gatehouse-connections');
    await edit.getByRole('button', { name: 'Cancel' }).click();
  });
});

test.describe('Connections with JavaScript off', () => {
  test.use({ javaScriptEnabled: false });

  test('the list is readable', async ({ page, request }) => {
    const name = `Readable ${Date.now()}`;
    await signIn(page, '/connections');
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'gatehouse_session')!.value;
    const created = await request.post(`${urls.basic}/api/v0/connections`, {
      headers: { authorization: `Bearer ${session}` },
      data: {
        name,
        grant_type: 'client_credentials',
        client_id: 'gatehouse-connections',
        client_secret: 'gatehouse-connections-secret',
        token_url: `${urls.oidc}/token`,
        scopes: ['read'],
        resource: `${urls.oidc}/api`,
      },
    });
    expect(created.status()).toBe(201);
    await page.goto(`${urls.basic}/connections`);
    const card = page.locator(`[data-testid="connection-card"][data-name="${name}"]`);
    await expect(card.getByTestId('connection-name')).toHaveText(name);
    await expect(card).toContainText('Client credentials');
    // Fetched in the background right after creation.
    await expect(async () => {
      await page.reload();
      await expect(card.getByTestId('connection-status')).toHaveText('Connected');
    }).toPass({ timeout: 10_000 });
    await expect(page.locator('body')).not.toContainText('gatehouse-connections-secret');
  });
});
