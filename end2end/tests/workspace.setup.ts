import { test as setup, expect } from '@playwright/test';
import { signIn } from './fixtures';

/** The Settings page, as an admin: quiet hours off for the suite, and the save audited. */
setup('an admin turns quiet hours off on the Settings page', async ({ page }) => {
  await signIn(page, 'admin');
  await page.getByRole('link', { name: 'Settings' }).click();
  await expect(page.getByRole('heading', { name: 'Settings' })).toBeVisible();
  await expect(page.getByLabel('Keep quiet hours')).toBeChecked();
  await expect(page.getByLabel('From')).toHaveValue('21:00');
  await page.getByLabel('Keep quiet hours').uncheck();
  await page.getByRole('button', { name: 'Save settings' }).click();
  await expect(page.getByRole('status')).toContainText('quiet hours 21:00–08:00 → off');
  await expect(page.getByLabel('Keep quiet hours')).not.toBeChecked();
});
