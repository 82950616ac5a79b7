import { test, expect, signIn, row } from './fixtures';

test('an admin pauses and resumes a broadcast, and it persists across reloads', async ({ page }) => {
  await signIn(page, 'admin');
  const r = row(page, 'Cyber Monday reminder');
  await expect(r.locator('.status')).toHaveText('Not processed');
  const sw = r.getByRole('switch');
  await expect(sw).toHaveAttribute('aria-checked', 'true');
  await sw.click();
  await expect(r.locator('.status')).toHaveText('Paused');
  await expect(r.getByRole('switch')).toHaveAttribute('aria-checked', 'false');
  await page.reload();
  await expect(row(page, 'Cyber Monday reminder').locator('.status')).toHaveText('Paused');

  await row(page, 'Cyber Monday reminder').getByRole('switch').click();
  await expect(row(page, 'Cyber Monday reminder').locator('.status')).toHaveText('Not processed');
  await page.reload();
  await expect(row(page, 'Cyber Monday reminder').locator('.status')).toHaveText('Not processed');
});

test('a manager sees the toggle disabled with a reason, and the server refuses anyway', async ({ page }) => {
  await signIn(page, 'manager');
  const sw = row(page, 'Cyber Monday reminder').getByRole('switch');
  await expect(sw).toBeDisabled();
  await expect(sw).toHaveAttribute('title', 'Only admins can pause or resume broadcasts.');
  await expect(page.locator('#toggle-reason')).toHaveText('Only admins can pause or resume broadcasts.');

  // Going around the page: the server function checks the role itself.
  const id = await row(page, 'Cyber Monday reminder').getAttribute('data-id');
  const res = await page.request.post('/api/broadcasts/set-paused', {
    form: { id: String(id), paused: 'true' },
    // From this site (the same-origin check passes): the role check is what refuses.
    headers: { Accept: 'application/json', Origin: new URL(page.url()).origin },
  });
  expect(res.status()).toBe(403);
  expect(await res.text()).toContain('not allowed');
  await page.reload();
  await expect(row(page, 'Cyber Monday reminder').locator('.status')).toHaveText('Not processed');
});
