import type { Page, APIRequestContext } from '@playwright/test';
import { test, expect, hydrated } from '../support/fixtures';
import { urls } from '../support/servers';
import { signIn as signInTo } from '../support/oauth';

const signIn = (page: Page) => signInTo(page, '/settings/authentication');

/** Calls the whoami tool over /mcp (2026-07-28, stateless) with an optional token. */
async function whoami(request: APIRequestContext, token?: string) {
  return request.post(`${urls.basic}/mcp`, {
    headers: {
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': 'whoami',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    data: {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: {
        name: 'whoami',
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientCapabilities': {},
        },
      },
    },
  });
}

test.describe('Settings › Authentication', () => {
  test('create a token, see it once, use it, delete it; the old token then gets 401', async ({ page, context, request }) => {
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: urls.basic });
    await signIn(page);
    await hydrated(page);
    const name = `e2e token ${Date.now()}`;

    await page.getByTestId('create-token').click();
    const create = page.getByRole('dialog', { name: 'Create an API token' });
    await create.getByLabel('Name').fill(name);
    await create.getByLabel('Expires').selectOption('30');
    await create.getByRole('button', { name: 'Create token' }).click();

    const created = page.getByRole('dialog', { name: `Token “${name}” created` });
    await expect(created).toBeVisible();
    const token = await created.getByTestId('token-value').inputValue();
    expect(token).toMatch(/^gatehouse_at_[A-Za-z0-9_-]{43}$/);
    await expect(created.getByTestId('snippet-header')).toContainText(`"url": "${urls.basic}/mcp"`);
    await expect(created.getByTestId('snippet-header')).toContainText(`Bearer ${token}`);
    await expect(created.getByTestId('snippet-query')).toContainText(`${urls.basic}/mcp?token=${token}`);

    await created.getByTestId('copy-token').click();
    await expect(created.getByTestId('copy-token')).toHaveText('Copied');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(token);

    // It works.
    const used = await whoami(request, token);
    expect(used.status()).toBe(200);
    expect((await used.json()).result.structuredContent.token.name).toBe(name);

    // Shown once: gone from the page after "Done", and after a reload.
    await created.getByRole('button', { name: 'Done' }).click();
    await expect(created).toBeHidden();
    const row = page.getByTestId('token-row').filter({ hasText: name });
    await expect(row).toBeVisible();
    await expect(row).toContainText('mcp');
    await page.reload();
    await expect(row).toBeVisible();
    await expect(row.getByTestId('token-last-used')).toHaveText('just now');
    expect(await page.content()).not.toContain(token);

    // Delete, with confirmation.
    await hydrated(page);
    await row.getByRole('button', { name: `Delete token ${name}` }).click();
    const confirm = page.getByRole('dialog', { name: `Delete token “${name}”?` });
    await expect(confirm).toContainText('stop working');
    await confirm.getByRole('button', { name: 'Delete token' }).click();
    await expect(confirm).toBeHidden();
    await expect(row).toHaveCount(0);

    const refused = await whoami(request, token);
    expect(refused.status()).toBe(401);
    expect(refused.headers()['www-authenticate']).toContain('invalid_token');
  });

  test('a bad name is refused in the dialog', async ({ page, consoleErrors }) => {
    await signIn(page);
    await hydrated(page);
    await page.getByTestId('create-token').click();
    const create = page.getByRole('dialog', { name: 'Create an API token' });
    await create.getByLabel('Name').fill('   ');
    await create.getByRole('button', { name: 'Create token' }).click();
    await expect(create.getByRole('alert')).toContainText('Give the token a name');
    await create.getByRole('button', { name: 'Cancel' }).click();
    await expect(create).toBeHidden();
    // The browser logs the refused request (HTTP 400); that one is expected.
    const expected = consoleErrors.filter((e) => e.includes('status of 400'));
    expect(expected).toHaveLength(1);
    consoleErrors.splice(0, consoleErrors.length, ...consoleErrors.filter((e) => !expected.includes(e)));
  });

  test('requiring authentication warns first, then refuses clients without a token', async ({ page, request }) => {
    await signIn(page);
    await hydrated(page);
    const toggle = page.getByRole('switch', { name: 'Require authentication' });
    await expect(toggle).toHaveAttribute('aria-checked', 'false');

    await toggle.click();
    const confirm = page.getByRole('dialog', { name: 'Require authentication on /mcp?' });
    await expect(confirm).toContainText('will stop working');
    await confirm.getByRole('button', { name: 'Require authentication' }).click();
    await expect(toggle).toHaveAttribute('aria-checked', 'true');
    await expect(page.getByTestId('protection-status')).toContainText('On');

    const refused = await whoami(request);
    expect(refused.status()).toBe(401);
    expect(refused.headers()['www-authenticate']).toContain('Bearer');

    await toggle.click();
    await page.getByRole('dialog', { name: 'Stop requiring authentication?' }).getByRole('button', { name: 'Turn protection off' }).click();
    await expect(toggle).toHaveAttribute('aria-checked', 'false');
    expect((await whoami(request)).status()).toBe(200);
  });
});

test.describe('Settings › Authentication with JavaScript off', () => {
  test.use({ javaScriptEnabled: false });

  test('the page is readable', async ({ page }) => {
    await signIn(page);
    await expect(page.getByRole('heading', { name: 'MCP endpoint protection' })).toBeVisible();
    await expect(page.getByRole('heading', { name: 'API tokens' })).toBeVisible();
    await expect(page.getByTestId('protection-status')).toBeVisible();
  });
});
