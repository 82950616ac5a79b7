import { test, expect, signIn, hydrated, USERS, PASSWORD } from './fixtures';

test('signed-out visitors are sent to the sign-in page', async ({ page }) => {
  await page.goto('/?sort=created');
  await expect(page).toHaveURL(/\/login\?next=/);
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible();
});

for (const role of ['admin', 'staff', 'manager'] as const) {
  test(`${role} signs in, sees the list and signs out`, async ({ page }) => {
    await signIn(page, role);
    await expect(page.locator('.topbar .role')).toHaveText(role);
    await expect(page.locator('table.broadcasts tbody tr')).toHaveCount(20);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page).toHaveURL(/\/login$/);
    await page.goto('/');
    await expect(page).toHaveURL(/\/login/);
  });
}

test('a wrong password shows a message and keeps the email', async ({ page }) => {
  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Email').fill(USERS.staff);
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Wrong email or password.');
  await expect(page.getByLabel('Email')).toHaveValue(USERS.staff);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Broadcasts' })).toBeVisible();
});

test('the session cookie is HttpOnly and SameSite', async ({ page, context }) => {
  await signIn(page, 'staff');
  const cookie = (await context.cookies()).find((c) => c.name === 'herald_session');
  expect(cookie?.httpOnly).toBe(true);
  expect(cookie?.sameSite).toBe('Lax');
  expect(await page.evaluate(() => document.cookie)).not.toContain('herald_session');
});
