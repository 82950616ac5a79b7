// Runs after list.spec and nojs.spec (files run in name order): it adds the newest broadcast.
import { test, expect, signIn, row, hydrated } from './fixtures';

test('a sending broadcast shows its progress rising without a reload', async ({ page }) => {
  await signIn(page, 'manager');
  // A demo broadcast in progress on the sandbox channel paced at one message a second.
  const progress = row(page, 'Order delay apology').locator('.progress-text');
  await expect(progress).toHaveText(/^\d+ of \d+$/);
  const done = async () => parseInt((await progress.textContent()) ?? '0', 10);
  const first = await done();
  await expect.poll(done, { timeout: 15_000 }).toBeGreaterThan(first);
  await expect(row(page, 'Order delay apology').locator('.status')).toHaveText('Sending');
});

test('send now: the dispatcher sends it and the list shows it sent without a reload', async ({ page }) => {
  await signIn(page, 'staff');
  await page.getByRole('link', { name: 'New Broadcast' }).click();
  await hydrated(page);
  await page.getByLabel('Name (only staff see it)').fill('Flash sale now');
  await page.getByLabel('Message').fill('Hi {{first_name|there}}, 2 hours only ⚡');
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page).toHaveURL(/step=2$/);
  await page.getByLabel('Condition 1 value').selectOption({ label: 'VIP' });
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page).toHaveURL(/step=3$/);
  await page.getByLabel('Sandbox (sandbox)').check();
  await page.getByRole('button', { name: 'Send now' }).click();
  await expect(page.getByRole('status').first()).toContainText('“Flash sale now” is being sent now.');
  await hydrated(page);
  await expect(row(page, 'Flash sale now').locator('.status')).toHaveText('Sent', { timeout: 20_000 });
});
