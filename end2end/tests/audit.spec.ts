import type { Page } from '@playwright/test';
import { test, expect, hydrated } from '../support/fixtures';
import { urls } from '../support/servers';
import { signIn } from '../support/oauth';

/** A vault secret saved through the API, so that the trail has an event naming it. */
async function saveSecret(page: Page, name: string) {
  const response = await page.request.put(`${urls.basic}/api/v0/secrets/${name}`, {
    data: { value: 'e2e-audit-value-not-shown' },
    headers: { origin: urls.basic },
  });
  expect(response.status()).toBe(204);
}

/** Filters the trail to `name`'s secret events with the page's form. */
async function filterTo(page: Page, name: string) {
  await page.getByLabel('Action').fill('secret.*');
  await page.getByLabel('Target').fill(name);
  await page.getByRole('button', { name: 'Show' }).click();
  await expect(page).toHaveURL(/action=secret\.\*/);
}

test.describe('Settings › Audit', () => {
  test('an admin finds who saved a secret, by filtering the trail', async ({ page }) => {
    await signIn(page, '/settings/audit');
    await hydrated(page);
    await expect(page.getByRole('navigation', { name: 'Settings' }).getByRole('link', { name: 'Audit' })).toHaveAttribute('aria-current', 'page');
    const name = `E2E_AUDIT_${Date.now()}`;
    await saveSecret(page, name);
    await filterTo(page, name);
    const rows = page.getByTestId('audit-row');
    await expect(rows).toHaveCount(1);
    await expect(rows.first()).toContainText('secret.set');
    await expect(rows.first()).toContainText(`secret ${name}`);
    await expect(rows.first()).toContainText('admin (person)');
    await expect(page.getByText('e2e-audit-value-not-shown')).toHaveCount(0);
  });
});

test.describe('Settings › Audit with JavaScript off', () => {
  test.use({ javaScriptEnabled: false });

  test('the trail reads and filters without JavaScript', async ({ page }) => {
    await signIn(page, '/settings/audit');
    const name = `E2E_AUDIT_NOJS_${Date.now()}`;
    await saveSecret(page, name);
    await filterTo(page, name);
    const rows = page.getByTestId('audit-row');
    await expect(rows).toHaveCount(1);
    await expect(rows.first()).toContainText('secret.set');
    await page.getByRole('link', { name: 'Clear' }).click();
    await expect(page.getByTestId('audit-row').first()).toBeVisible();
  });
});
