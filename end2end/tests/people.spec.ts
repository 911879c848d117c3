import { test, expect, hydrated } from '../support/fixtures';
import { callTool, mcpToken, nav, openSessionStream, perPersonServer, signInAs } from '../support/people';

// Each person's own upstream account: per-person connections on the oauth2 instance, the test
// provider as both the sign-in and the connection's provider, the Python upstream behind it.
// The browser is signed in at the provider already (from signing in to Gatehouse), so the
// provider sends it straight back as the same person: the account connected is theirs.

test.describe('Per-person connections', () => {
  test('a member connects their own account from the MCP servers page', async ({ page, browser }) => {
    const stamp = Date.now();
    const name = `Tracker ${stamp}`;
    const server = `t${stamp}`;
    const admin = await browser.newPage();
    await signInAs(admin, `ada.${stamp}+admins@example.com`);
    await perPersonServer(admin.request, name, server);
    await admin.close();

    await signInAs(page, `bob.${stamp}@example.com`, '/mcp-servers');
    await hydrated(page);
    const card = page.locator(`[data-testid="server-card"][data-name="${server}"]`);
    await expect(card.getByTestId('personal-account-status')).toHaveText('Not connected');
    // No admin actions on it.
    await expect(card.getByRole('button', { name: 'Edit' })).toHaveCount(0);

    const popupOpened = page.waitForEvent('popup');
    await card.getByTestId('connect-my-account').click();
    const popup = await popupOpened;
    if (!popup.isClosed()) await popup.waitForEvent('close');
    await expect(card.getByTestId('personal-account-status')).toHaveText('Connected');
    await expect(card.getByTestId('connect-my-account')).toHaveCount(0);

    // My connections: their own grant, with nothing of the client and no admin action.
    await nav(page).getByRole('link', { name: 'My connections' }).click();
    const mine = page.locator(`[data-testid="connection-card"][data-name="${name}"]`);
    await expect(mine.getByTestId('per-person-badge')).toBeVisible();
    await expect(mine.getByTestId('connection-status')).toHaveText('Connected');
    await expect(mine.getByRole('button', { name: 'Disconnect my account' })).toBeVisible();
    await expect(mine.getByRole('button', { name: 'Edit' })).toHaveCount(0);
    await expect(mine).not.toContainText('/token');

    // Their MCP client reaches the upstream as them.
    const token = await mcpToken(page.request);
    const who = await callTool(page.request, token, `${server}__whoami`);
    expect(who.isError).toBe(false);
    expect(JSON.parse(who.text).subject).toBe(`bob.${stamp}@example.com`);
  });

  test('the admin sees whose grants exist and revokes one', async ({ page, browser }) => {
    const stamp = Date.now();
    const name = `Shared tracker ${stamp}`;
    const member = await browser.newPage();
    const adminEmail = `ada.${stamp}+admins@example.com`;
    await signInAs(page, adminEmail, '/connections');
    const id = await perPersonServer(page.request, name, `s${stamp}`);
    // A member connects through the API's popup flow, as the page does.
    await signInAs(member, `dave.${stamp}@example.com`, '/connections');
    await hydrated(member);
    const popupOpened = member.waitForEvent('popup');
    await member.locator(`[data-testid="connection-card"][data-name="${name}"]`).getByRole('button', { name: `Connect ${name}` }).click();
    const popup = await popupOpened;
    if (!popup.isClosed()) await popup.waitForEvent('close');
    await member.close();

    await page.reload();
    await hydrated(page);
    const card = page.locator(`[data-testid="connection-card"][data-id="${id}"]`);
    await expect(card.getByTestId('connection-status')).toHaveText('Not connected');
    const grant = card.locator(`[data-testid="person-grant"][data-person="dave.${stamp}@example.com"]`);
    await expect(grant).toContainText('Connected');
    await grant.getByRole('button', { name: `Revoke dave.${stamp}@example.com's grant` }).click();
    await page.getByTestId('revoke-grant-dialog').getByRole('button', { name: 'Revoke' }).click();
    await expect(card.getByTestId('person-grants-empty')).toBeVisible();
  });
});

test.describe('A "connect your account" link, with JavaScript off', () => {
  test.use({ javaScriptEnabled: false });

  test('it connects its own person, and nobody else', async ({ page, browser }) => {
    const stamp = Date.now();
    const name = `Linked ${stamp}`;
    const server = `l${stamp}`;
    const carol = `carol.${stamp}@example.com`;
    const admin = await browser.newPage();
    await signInAs(admin, `ada.${stamp}+admins@example.com`);
    await perPersonServer(admin.request, name, server);
    await admin.close();

    // Carol's MCP client, without URL elicitation: the link comes in the tool error.
    await signInAs(page, carol);
    const token = await mcpToken(page.request);
    const refused = await callTool(page.request, token, `${server}__whoami`);
    expect(refused.isError).toBe(true);
    const link = refused.text.match(/https?:\/\/\S+\/connections\/link\/\S+/)![0];
    expect(link).not.toContain('carol');

    // Someone else opens it: told so, nothing connected.
    const other = await browser.newPage();
    await signInAs(other, `erin.${stamp}@example.com`);
    await other.goto(link);
    await expect(other.getByRole('heading')).toHaveText('This link was made for another Gatehouse user');
    await expect(other.getByText(carol)).toHaveCount(0);
    await other.close();

    // Her other MCP client has a 2025-era session open, listening.
    const listening = await openSessionStream(token);

    // Carol opens it, signed in as herself: a real form, then the provider, in the page.
    await page.goto(link);
    await expect(page.getByRole('heading')).toHaveText(`Connect your account of ${name}`);
    await page.getByRole('button', { name: `Continue to ${name}` }).click();
    await expect(page.getByRole('heading')).toHaveText(`${name} is connected`);
    await expect(page.getByText('go back to it')).toBeVisible();

    // The call her client retries now works, as her, and her session heard that her tools
    // changed and that the link was followed.
    const who = await callTool(page.request, token, `${server}__whoami`);
    expect(who.isError).toBe(false);
    expect(JSON.parse(who.text).subject).toBe(carol);
    await expect.poll(listening.heard).toContain('notifications/tools/list_changed');
    await expect.poll(listening.heard).toContain('notifications/elicitation/complete');
    listening.close();
  });
});
