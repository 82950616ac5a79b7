import { test, expect, signIn, row, names, USERS } from './fixtures';

test.use({ javaScriptEnabled: false });

test('without JavaScript: sign in, list, search and sort work as plain pages', async ({ page }) => {
  await page.goto('/login');
  await page.getByLabel('Email').fill(USERS.manager);
  await page.getByLabel('Password').fill('wrong');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Wrong email or password.');
  await expect(page.getByLabel('Email')).toHaveValue(USERS.manager);

  await signIn(page, 'manager', { js: false });
  await expect(page.locator('table.broadcasts tbody tr')).toHaveCount(20);
  await page.getByRole('searchbox', { name: 'Search broadcasts' }).fill('newsletter');
  await page.getByRole('button', { name: 'Search' }).click();
  expect(await names(page)).toEqual(['November newsletter']);
  await page.goto('/');
  await page.getByRole('link', { name: 'Created' }).click();
  await expect(page.locator('table.broadcasts tbody td.name').first()).toHaveText('Draft: feedback follow-up');
});

test('without JavaScript an admin can still pause and resume', async ({ page }) => {
  await signIn(page, 'admin', { js: false });
  await row(page, 'Holiday opening hours').getByRole('switch').click();
  await expect(row(page, 'Holiday opening hours').locator('.status')).toHaveText('Paused');
  await row(page, 'Holiday opening hours').getByRole('switch').click();
  await expect(row(page, 'Holiday opening hours').locator('.status')).toHaveText('Not processed');
});
