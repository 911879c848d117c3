import { test, expect, hydrated } from '../support/fixtures';
import { urls } from '../support/servers';
import { nav, signInAs } from '../support/people';

// Admins are a group at the test provider (support/people.ts).

test.describe('Admins and members', () => {
  test('a member sees their own things and no admin actions', async ({ page }) => {
    const email = `bob.${Date.now()}@example.com`;
    await signInAs(page, email);
    await hydrated(page);
    await expect(page.getByTestId('role')).toHaveText('member');
    await expect(nav(page).getByRole('link', { name: 'MCP Servers' })).toBeVisible();
    await expect(nav(page).getByRole('link', { name: 'Connections', exact: true })).toHaveCount(0);

    // "My connections": the ones that need their own account (other tests may have made some:
    // people.spec.ts), nothing to create.
    await nav(page).getByRole('link', { name: 'My connections' }).click();
    await expect(page.getByRole('heading', { name: 'Connections' })).toBeVisible();
    await expect(page.getByTestId('new-connection')).toHaveCount(0);

    await nav(page).getByRole('link', { name: 'MCP Servers' }).click();
    await expect(page.getByRole('heading', { name: 'MCP Servers' })).toBeVisible();
    await expect(page.getByTestId('add-server')).toHaveCount(0);
    await expect(page.getByTestId('add-from-catalog')).toHaveCount(0);
    await expect(page.getByTestId('secrets')).toHaveCount(0);

    await nav(page).getByRole('link', { name: 'Settings' }).click();
    await expect(page.getByRole('navigation', { name: 'Settings' }).getByRole('link', { name: 'Sessions' })).toBeVisible();
    await expect(page.getByRole('navigation', { name: 'Settings' }).getByRole('link', { name: 'OAuth Clients' })).toHaveCount(0);
    await expect(page.getByRole('navigation', { name: 'Settings' }).getByRole('link', { name: 'Audit' })).toHaveCount(0);
    await expect(page.getByTestId('protection-status')).toBeVisible();
    await expect(page.getByTestId('protection-toggle')).toHaveCount(0);

    // A member creates an mcp token for themselves; connections:token is offered too (it
    // reaches their own per-person grants only).
    const name = `bob's laptop ${Date.now()}`;
    await page.getByTestId('create-token').click();
    const create = page.getByRole('dialog', { name: 'Create an API token' });
    await expect(create.getByText('connections:token')).toBeVisible();
    await create.getByLabel('Name').fill(name);
    await create.getByRole('button', { name: 'Create token' }).click();
    const created = page.getByRole('dialog', { name: `Token “${name}” created` });
    await expect(created.getByTestId('token-value')).toHaveValue(/^gatehouse_at_/);
    await created.getByRole('button', { name: 'Done' }).click();
    await expect(page.getByRole('row').filter({ hasText: name })).toBeVisible();
    // Only their own tokens are listed.
    const rows = page.locator('tbody tr');
    for (const row of await rows.all()) await expect(row).toContainText(`by ${email}`);

    // The server refuses what the page does not offer.
    const refused = await page.request.post(`${urls.oauth2}/api/v0/mcp-servers`, { data: {} });
    expect(refused.status()).toBe(403);
    expect((await refused.json()).message).toContain('Only an admin');
  });

  test('an admin group member sees the admin actions', async ({ page }) => {
    await signInAs(page, 'ada+admins@example.com', '/settings/authentication');
    await hydrated(page);
    await expect(page.getByTestId('role')).toHaveText('admin');
    await expect(nav(page).getByRole('link', { name: 'Connections', exact: true })).toBeVisible();
    await expect(page.getByTestId('protection-toggle')).toBeVisible();
    await expect(page.getByRole('navigation', { name: 'Settings' }).getByRole('link', { name: 'OAuth Clients' })).toBeVisible();
    await expect(page.getByRole('navigation', { name: 'Settings' }).getByRole('link', { name: 'Audit' })).toBeVisible();
    await page.goto(`${urls.oauth2}/mcp-servers`);
    await expect(page.getByTestId('add-server')).toBeVisible();
  });
});

test.describe('A member with JavaScript off', () => {
  test.use({ javaScriptEnabled: false });

  test('the pages are readable, without admin actions', async ({ page }) => {
    await signInAs(page, `carol.${Date.now()}@example.com`);
    await expect(page.getByTestId('role')).toHaveText('member');
    await expect(nav(page).getByRole('link', { name: 'My connections' })).toBeVisible();
    await page.goto(`${urls.oauth2}/connections`);
    await expect(page.getByRole('heading', { name: 'Connections' })).toBeVisible();
    await expect(page.getByTestId('new-connection')).toHaveCount(0);
    await page.goto(`${urls.oauth2}/mcp-servers`);
    await expect(page.getByRole('heading', { name: 'MCP Servers' })).toBeVisible();
    await expect(page.getByTestId('add-server')).toHaveCount(0);
    await page.goto(`${urls.oauth2}/settings/sessions`);
    await expect(page.getByRole('navigation', { name: 'Settings' }).getByRole('link', { name: 'OAuth Clients' })).toHaveCount(0);
    await expect(page.getByRole('navigation', { name: 'Settings' }).getByRole('link', { name: 'Audit' })).toHaveCount(0);
  });
});
