import { test, expect, signIn, row } from './fixtures';
import AxeBuilder from '@axe-core/playwright';

async function noSeriousViolations(page: import('@playwright/test').Page) {
  const result = await new AxeBuilder({ page }).analyze();
  const serious = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
  expect(serious).toEqual([]);
}

test('create a broadcast in three steps, see it not processed, then change its time', async ({ page }) => {
  await signIn(page, 'staff');
  await page.getByRole('link', { name: 'New Broadcast' }).click();
  await expect(page.getByRole('heading', { name: 'New broadcast' })).toBeVisible();
  await page.getByLabel('Name (only staff see it)').fill('Spring launch');
  await page.getByLabel('Message').fill('Hello {{first_name}} 🌷 spring is here');
  await page.getByLabel(/Send at/).fill('2099-04-01T10:00');

  // A program renamed .png is refused and nothing typed is lost; a real image is attached.
  const exe = Buffer.from('4d5a90000300000004000000ffff0000', 'hex');
  await page.getByLabel(/Add a file/).setInputFiles({ name: 'cat.png', mimeType: 'image/png', buffer: exe });
  await page.getByRole('button', { name: 'Attach' }).click();
  await expect(page.getByRole('alert')).toContainText('its content is EXE');
  await expect(page.getByLabel('Message')).toHaveValue('Hello {{first_name}} 🌷 spring is here');
  await expect(page.getByLabel(/Send at/)).toHaveValue('2099-04-01T10:00');
  const png = Buffer.from(
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
    'base64',
  );
  await page.getByLabel(/Add a file/).setInputFiles({ name: 'spring.png', mimeType: 'image/png', buffer: png });
  await page.getByRole('button', { name: 'Attach' }).click();
  await expect(page.locator('ul.attachments li')).toHaveCount(1);
  await expect(page.locator('ul.attachments li')).toContainText('spring.png');
  await expect(page.locator('ul.attachments img')).toHaveJSProperty('naturalWidth', 1);
  await noSeriousViolations(page);
  await page.getByRole('button', { name: 'Next' }).click();

  // Audience: All conditions, tag is VIP; the count follows.
  await expect(page).toHaveURL(/\/broadcasts\/\d+\/edit\?step=2$/);
  const everyone = await page.locator('.audience-count').textContent();
  await page.getByLabel('Customers matching').selectOption('all');
  await page.getByLabel('Condition 1 value').selectOption({ label: 'VIP' });
  await page.getByRole('button', { name: 'Apply and count' }).click();
  await expect(page.locator('.audience-count')).not.toHaveText(everyone ?? '');
  await expect(page.getByLabel('Condition 1 value')).toHaveValue(/\d+/);
  await noSeriousViolations(page);
  await page.getByRole('button', { name: 'Next' }).click();

  // Channels: the pre-flight check counts who can be reached.
  await expect(page).toHaveURL(/step=3$/);
  await page.getByLabel('Sandbox (sandbox)').check();
  await page.getByRole('button', { name: 'Apply and count' }).click();
  await expect(page.locator('.preflight')).toContainText(/^[1-9]\d* of [1-9]\d* matching customers can be reached/);
  await page.getByRole('button', { name: 'Update' }).click();

  await expect(page.getByRole('status').first()).toContainText('“Spring launch” is scheduled for 1 Apr 2099, 10:00');
  await expect(row(page, 'Spring launch').locator('.status, td').filter({ hasText: 'Not processed' }).first()).toBeVisible();

  // Edit its time.
  await page.getByRole('link', { name: 'Spring launch' }).click();
  await expect(page.getByLabel(/Send at/)).toHaveValue('2099-04-01T10:00');
  await page.getByLabel(/Send at/).fill('2099-04-02T11:30');
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByLabel('Condition 1 value')).not.toHaveValue('');
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByLabel('Sandbox (sandbox)')).toBeChecked();
  await page.getByRole('button', { name: 'Update' }).click();
  await expect(page.getByRole('status').first()).toContainText('scheduled for 2 Apr 2099, 11:30');
});

test('a sent broadcast cannot be edited but can be copied into a draft', async ({ page }) => {
  await signIn(page, 'staff');
  await page.getByRole('link', { name: 'November newsletter' }).click();
  await expect(page.getByRole('status')).toContainText('it can no longer be edited');
  await page.getByRole('button', { name: 'Copy into a new draft' }).click();
  await expect(page.getByLabel('Name (only staff see it)')).toHaveValue('Copy of November newsletter');
  await expect(page.getByLabel('Message')).toHaveValue(/What's new in November/);
  await expect(page.getByLabel(/Send at/)).toHaveValue('');
  await page.getByRole('button', { name: 'Save draft and leave' }).click();
  await expect(page.getByRole('status').first()).toContainText('Saved the draft “Copy of November newsletter”');
  await expect(row(page, 'Copy of November newsletter')).toContainText('Draft');
});
