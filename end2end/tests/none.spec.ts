import { test, expect, hydrated } from '../support/fixtures';
import { urls } from '../support/servers';

test.describe('AUTH_TYPE=none', () => {
  test('the login page continues to the dashboard', async ({ page }) => {
    await page.goto(`${urls.none}/login`);
    await hydrated(page);
    await page.getByRole('link', { name: 'Continue to dashboard' }).click();
    await expect(page).toHaveURL(`${urls.none}/`);
    await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
    await expect(page.getByTestId('fact-auth')).toContainText('None');
    await expect(page.getByTestId('fact-storage')).toContainText('SQLite');
    await expect(page.getByTestId('fact-public-url')).toHaveText(urls.none);
    await expect(page.getByTestId('identity')).toContainText('AUTH_TYPE=none');
    // Nothing to sign out of.
    await expect(page.getByRole('button', { name: 'Sign out' })).toHaveCount(0);
  });
});

test.describe('AUTH_TYPE=none with JavaScript off', () => {
  test.use({ javaScriptEnabled: false });

  test('the dashboard is complete HTML', async ({ page }) => {
    await page.goto(`${urls.none}/`);
    await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
    await expect(page.getByTestId('fact-version')).toHaveText(/^\d+\.\d+\.\d+/);
    await expect(page.getByTestId('fact-storage')).toContainText('gatehouse.db');
  });
});
