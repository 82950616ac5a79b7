import { test as setup, expect } from '@playwright/test';
import { signIn } from './fixtures';

/**
 * The Settings page, as an admin: for the suite, quiet hours off (it runs at any hour, and the
 * demo's customers live around the world) and no opt-in required for marketing (the demo's
 * customers have no consent records); the save is confirmed with what changed.
 */
setup('an admin sets the workspace rules for the suite on the Settings page', async ({ page }) => {
  await signIn(page, 'admin');
  await page.getByRole('link', { name: 'Settings' }).click();
  await expect(page.getByRole('heading', { name: 'Settings' })).toBeVisible();
  await expect(page.getByLabel('Keep quiet hours')).toBeChecked();
  await expect(page.getByLabel('From')).toHaveValue('21:00');
  await expect(page.getByLabel('WhatsApp', { exact: true })).toBeChecked();
  await expect(page.getByLabel('SMS', { exact: true })).toBeChecked();
  await page.getByLabel('Keep quiet hours').uncheck();
  await page.getByLabel('WhatsApp', { exact: true }).uncheck();
  await page.getByLabel('SMS', { exact: true }).uncheck();
  await page.getByRole('button', { name: 'Save settings' }).click();
  const saved = page.getByRole('status');
  await expect(saved).toContainText('quiet hours 21:00–08:00 → off');
  await expect(saved).toContainText('opt-in required for marketing on whatsapp, sms → none');
  await expect(page.getByLabel('Keep quiet hours')).not.toBeChecked();
  await expect(page.getByLabel('SMS', { exact: true })).not.toBeChecked();
});
