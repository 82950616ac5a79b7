import { test, expect, signIn } from './fixtures';
import AxeBuilder from '@axe-core/playwright';

test('an admin connects a webhook channel; its secret is never shown again; disable it', async ({ page }) => {
  await signIn(page, 'admin');
  await page.getByRole('link', { name: 'Channels' }).click();
  await expect(page.getByRole('heading', { name: 'Channels' })).toBeVisible();
  await page.getByLabel('Kind').selectOption('webhook');
  await page.locator('#new-name').fill('Shop system');
  await page.locator('#new-webhook-url').fill('https://shop.example/herald');
  await page.locator('#new-webhook-secret').fill('a-very-secret-signing-key');
  await page.getByRole('button', { name: 'Connect' }).click();
  await expect(page.getByRole('status')).toHaveText('Connected “Shop system”.');
  const row = page.locator('table.channels-list tbody tr', { hasText: 'Shop system' });
  await expect(row).toContainText('https://shop.example/herald');
  await expect(row.locator('dd[data-setting="secret"]').first()).toHaveText('set');
  expect(await page.content()).not.toContain('a-very-secret');
  const a11y = await new AxeBuilder({ page }).analyze();
  expect(a11y.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id)).toEqual([]);
  await page.getByText('Shop system (Webhook (your own system))').click();
  await page.getByRole('button', { name: 'Disable Shop system' }).click();
  await expect(page.getByRole('status')).toContainText('Disabled “Shop system”');
  await expect(row).toContainText('Disabled');
});

test('staff are told that admins manage channels', async ({ page }) => {
  await signIn(page, 'staff');
  await page.goto('/channels');
  await expect(page.getByText('Admins connect and manage channels.')).toBeVisible();
});
