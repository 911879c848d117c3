import { test, expect, hydrated } from '../support/fixtures';
import { urls } from '../support/servers';

async function signInAtProvider(page: import('@playwright/test').Page, email: string) {
  await page.goto(`${urls.oauth2}/`);
  await expect(page).toHaveURL(`${urls.oauth2}/login`);
  await hydrated(page);
  await page.getByRole('link', { name: 'Sign in with 127.0.0.1' }).click();
  await expect(page.getByRole('heading', { name: 'Test identity provider' })).toBeVisible();
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

test.describe('AUTH_TYPE=oauth2 against a real OIDC provider', () => {
  test('an allowed user signs in', async ({ page }) => {
    await signInAtProvider(page, 'alice@example.com');
    await expect(page).toHaveURL(`${urls.oauth2}/`);
    await expect(page.getByTestId('identity')).toHaveText('alice@example.com');
    await expect(page.getByTestId('fact-auth')).toContainText('OAuth2 / OIDC');
  });

  test('an email outside the allowed domains is refused, with the reason', async ({ page }) => {
    await signInAtProvider(page, 'mallory@evil.test');
    await expect(page).toHaveURL(`${urls.oauth2}/login?error=email_not_allowed`);
    await expect(page.getByRole('heading', { name: 'Access denied' })).toBeVisible();
    await expect(page.getByTestId('login-error')).toContainText('not allowed to use this Gatehouse');
    await page.goto(`${urls.oauth2}/`);
    await expect(page).toHaveURL(`${urls.oauth2}/login`);
  });

  test('refusing at the provider comes back as a clear error', async ({ page }) => {
    await page.goto(`${urls.oauth2}/login`);
    await page.getByRole('link', { name: 'Sign in with 127.0.0.1' }).click();
    await page.getByRole('button', { name: 'Deny' }).click();
    await expect(page).toHaveURL(`${urls.oauth2}/login?error=idp_denied`);
    await expect(page.getByTestId('login-error')).toContainText('did not let you sign in');
  });
});
