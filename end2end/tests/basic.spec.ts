import { test, expect, hydrated } from '../support/fixtures';
import { basicCredentials, urls } from '../support/servers';

const { username, password } = basicCredentials;

test.describe('AUTH_TYPE=basic', () => {
  test('a visitor signs in, returns to the page asked for, and signs out', async ({ page }) => {
    await page.goto(`${urls.basic}/?from=test`);
    await expect(page).toHaveURL(`${urls.basic}/login?next=%2F%3Ffrom%3Dtest`);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();

    await expect(page).toHaveURL(`${urls.basic}/?from=test`);
    await expect(page.getByTestId('identity')).toHaveText(username);
    await expect(page.getByTestId('fact-auth')).toContainText('Username and password');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page).toHaveURL(`${urls.basic}/login?signed_out=1`);
    await expect(page.getByText('You have signed out.')).toBeVisible();
    await page.goto(`${urls.basic}/`);
    await expect(page).toHaveURL(`${urls.basic}/login`);
  });

  test('a wrong password is refused with one message', async ({ page }) => {
    await page.goto(`${urls.basic}/login`);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password', { exact: true }).fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(`${urls.basic}/login?error=invalid_credentials`);
    await expect(page.getByTestId('login-error')).toHaveText('Invalid username or password.');
    await expect(page.getByTestId('identity')).toHaveCount(0);
  });

  test('the password toggle works once the page has hydrated', async ({ page }) => {
    await page.goto(`${urls.basic}/login`);
    await hydrated(page);
    const field = page.getByLabel('Password', { exact: true });
    await expect(field).toHaveAttribute('type', 'password');
    await page.getByTestId('toggle-password').click();
    await expect(field).toHaveAttribute('type', 'text');
    await expect(page.getByTestId('toggle-password')).toHaveText('Hide');
    await page.getByTestId('toggle-password').click();
    await expect(field).toHaveAttribute('type', 'password');
  });
});

test.describe('AUTH_TYPE=basic with JavaScript off', () => {
  test.use({ javaScriptEnabled: false });

  test('the login form still signs in and the dashboard still shows its data', async ({ page }) => {
    await page.goto(`${urls.basic}/login`);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(`${urls.basic}/`);
    await expect(page.getByTestId('identity')).toHaveText(username);
    await expect(page.getByTestId('fact-storage')).toContainText('SQLite');
  });

  test('without hydration the toggle does nothing', async ({ page }) => {
    await page.goto(`${urls.basic}/login`);
    await page.getByTestId('toggle-password').click();
    await expect(page.getByLabel('Password', { exact: true })).toHaveAttribute('type', 'password');
    await expect(page.locator('html[data-hydrated]')).toHaveCount(0);
  });
});
