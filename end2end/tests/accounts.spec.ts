import AxeBuilder from '@axe-core/playwright';
import { test, expect, signIn, hydrated } from './fixtures';

async function seriousViolations(page: import('@playwright/test').Page) {
  const result = await new AxeBuilder({ page }).analyze();
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}

test('an admin invites someone, who chooses a password through the link and signs in', async ({ page, browser }) => {
  await signIn(page, 'admin');
  await page.getByRole('link', { name: 'Staff', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Staff' })).toBeVisible();
  await hydrated(page);
  expect(await seriousViolations(page)).toEqual([]);
  const email = `invitee-${Date.now()}@herald.test`;
  await page.getByLabel('Name', { exact: true }).fill('Ines Invitee');
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Role', { exact: true }).selectOption('manager');
  await page.getByRole('button', { name: 'Invite' }).click();
  const link = await page.getByTestId('password-link').textContent();
  // The token is in the fragment: no server or proxy on the way ever sees it.
  expect(link).toContain('/password#token=');
  await expect(page.locator(`tr[data-email="${email}"]`)).toContainText('Invited');

  // The invitee, in another browser, signed out.
  const other = await browser.newContext();
  const them = await other.newPage();
  await them.goto(new URL(link!).pathname + new URL(link!).hash);
  await expect(them.getByText(email)).toBeVisible();
  expect(them.url()).not.toContain('token');
  await hydrated(them);
  expect(await seriousViolations(them)).toEqual([]);
  // Long enough for the browser's own check, too common for the server's.
  await them.getByLabel('New password', { exact: true }).fill('password1234');
  await them.getByLabel('New password again').fill('password1234');
  await them.getByRole('button', { name: 'Set password' }).click();
  await expect(them.getByRole('alert')).toContainText('too easy to guess');
  await them.getByLabel('New password', { exact: true }).fill('amber falcon meadow 2031');
  await them.getByLabel('New password again').fill('amber falcon meadow 2031');
  await them.getByRole('button', { name: 'Set password' }).click();
  await expect(them.getByRole('status')).toContainText('Your password is set');
  await them.getByLabel('Email').fill(email);
  await them.getByLabel('Password').fill('amber falcon meadow 2031');
  await them.getByRole('button', { name: 'Sign in' }).click();
  await expect(them.getByRole('heading', { name: 'Broadcasts' })).toBeVisible();
  await other.close();

  // Deactivating asks first and says what it does.
  await page.goto('/staff');
  await page.locator(`tr[data-email="${email}"]`).getByRole('link', { name: 'Deactivate…' }).click();
  await expect(page.getByRole('alertdialog')).toContainText('signed out everywhere');
  await page.getByRole('alertdialog').getByRole('button', { name: 'Deactivate' }).click();
  await expect(page.locator(`tr[data-email="${email}"]`)).toContainText('Deactivated');
});

test('the account page has no serious accessibility violations and refuses a wrong current password', async ({ page }) => {
  await signIn(page, 'staff');
  await page.goto('/account');
  await hydrated(page);
  expect(await seriousViolations(page)).toEqual([]);
  await page.getByLabel('Current password').fill('not it');
  await page.getByLabel('New password', { exact: true }).fill('amber falcon meadow 2031');
  await page.getByLabel('New password again').fill('amber falcon meadow 2031');
  await page.getByRole('button', { name: 'Change password' }).click();
  await expect(page.getByRole('alert')).toContainText('current password is not right');
});

test('staff and managers get no staff page', async ({ page }) => {
  for (const role of ['staff', 'manager'] as const) {
    await signIn(page, role);
    await expect(page.getByRole('link', { name: 'Staff', exact: true })).toHaveCount(0);
    // Asked for anyway (not navigated to: a 403 document would log a console error).
    const res = await page.request.get('/staff');
    expect(res.status()).toBe(403);
    const html = await res.text();
    expect(html).toContain('not allowed');
    expect(html).not.toContain('admin@herald.test');
    await page.context().clearCookies();
  }
});
