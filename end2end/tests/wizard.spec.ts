import { test, expect, signIn, row, hydrated } from './fixtures';
import AxeBuilder from '@axe-core/playwright';

async function noSeriousViolations(page: import('@playwright/test').Page) {
  const result = await new AxeBuilder({ page }).analyze();
  const serious = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
  expect(serious).toEqual([]);
}

test('create a broadcast in three steps, see it not processed, then change its time', async ({ page, consoleErrors }) => {
  await signIn(page, 'staff');
  await page.getByRole('link', { name: 'New Broadcast' }).click();
  await expect(page.getByRole('heading', { name: 'New broadcast' })).toBeVisible();
  await hydrated(page);
  await page.getByLabel('Name (only staff see it)').fill('Spring launch');
  await page.getByLabel('Message').fill('Hello {{first_name}} 🌷 spring is here');
  // The preview fills the placeholder in for a customer of the audience, as typed.
  const bubble = page.locator('section.preview .bubble');
  await expect(bubble).toHaveText(/^Hello \S+ 🌷 spring is here$/);
  await expect(bubble).not.toContainText('{{');
  // The emoji picker inserts at the caret.
  await page.getByLabel('Message').press('End');
  await page.getByText('Insert emoji').click();
  await page.getByRole('button', { name: 'Insert party popper' }).click();
  await expect(page.getByLabel('Message')).toHaveValue('Hello {{first_name}} 🌷 spring is here🎉');
  await expect(bubble).toHaveText(/spring is here🎉$/);
  await page.getByLabel('Message').fill('Hello {{nick}}');
  await expect(page.getByRole('alert')).toContainText('Unknown placeholder {{nick}}');
  await page.getByLabel('Message').fill('Hello {{first_name}} 🌷 spring is here🎉');
  await expect(page.getByRole('alert')).toHaveCount(0);
  await page.getByLabel(/Send at/).fill('2099-04-01T10:00');

  // Files upload as soon as they are chosen: a program renamed .png is refused by content
  // and nothing typed is lost; a real image shows its thumbnail.
  const exe = Buffer.from('4d5a90000300000004000000ffff0000', 'hex');
  await page.getByLabel(/Add a file/).setInputFiles({ name: 'cat.png', mimeType: 'image/png', buffer: exe });
  await expect(page.getByRole('alert')).toContainText('its content is EXE');
  await expect(page.getByLabel('Message')).toHaveValue('Hello {{first_name}} 🌷 spring is here🎉');
  // Chromium logs the refusal's 415 as a failed resource; that one line is expected.
  const refused = consoleErrors.findIndex((e) => e.includes('status of 415'));
  expect(refused).toBeGreaterThanOrEqual(0);
  consoleErrors.splice(refused, 1);
  const png = Buffer.from(
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
    'base64',
  );
  await page.getByLabel(/Add a file/).setInputFiles({ name: 'spring.png', mimeType: 'image/png', buffer: png });
  await expect(page.locator('ul.attachments li')).toHaveCount(1);
  await expect(page.locator('ul.attachments li')).toContainText('spring.png');
  await expect(page.locator('ul.attachments img')).toHaveJSProperty('naturalWidth', 1);

  // Dropped files upload too, with a progress bar while the upload is under way.
  let release = () => {};
  const held = new Promise<void>((r) => (release = r));
  await page.route('**/attachments', async (route) => {
    await held;
    await route.continue();
  });
  const drop = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['%PDF-1.7\n%\xE2\xE3\xCF\xD3\n'], 'menu.pdf', { type: 'application/pdf' }));
    return dt;
  });
  await page.dispatchEvent('.dropzone', 'drop', { dataTransfer: drop });
  await expect(page.getByLabel('Uploading menu.pdf')).toBeVisible();
  release();
  await expect(page.locator('ul.attachments li')).toHaveCount(2);
  await expect(page.getByLabel('Uploading menu.pdf')).toHaveCount(0);
  await page.unroute('**/attachments');
  // Removing one takes it off the list; the save keeps exactly the files listed.
  await page.getByRole('button', { name: 'Remove menu.pdf' }).click();
  await expect(page.locator('ul.attachments li')).toHaveCount(1);
  await noSeriousViolations(page);
  await page.getByRole('button', { name: 'Next' }).click();

  // Audience: All conditions, tag is VIP; the count follows as the menus change.
  await expect(page).toHaveURL(/\/broadcasts\/\d+\/edit\?step=2$/);
  await hydrated(page);
  const count = page.locator('.audience-count');
  const everyone = await count.textContent();
  await page.getByLabel('Customers matching').selectOption('all');
  await page.getByLabel('Condition 1 value').selectOption({ label: 'VIP' });
  await expect(count).toHaveText(/^\d+ customers? match/);
  await expect(count).not.toHaveText(everyone ?? '');
  const vips = await count.textContent();
  await page.getByRole('button', { name: 'Add condition' }).click();
  await expect(page.getByLabel('Condition 2 kind')).toBeVisible();
  await page.getByLabel('Condition 2 test').selectOption('is_not');
  await page.getByLabel('Condition 2 value').selectOption({ label: 'VIP' });
  await expect(count).toHaveText(/^0 customers match/);
  await page.getByRole('button', { name: 'Remove condition 2' }).click();
  await expect(count).toHaveText(vips ?? '');
  await noSeriousViolations(page);
  await page.getByRole('button', { name: 'Next' }).click();

  // Channels: the pre-flight check counts who can be reached.
  await expect(page).toHaveURL(/step=3$/);
  await page.getByLabel('Sandbox (sandbox)').check();
  await page.getByRole('button', { name: 'Apply and count' }).click();
  await expect(page.locator('.preflight')).toContainText(/^[1-9]\d* of [1-9]\d* matching customers can be reached/);
  // A test to one customer goes out on the picked channel; the broadcast stays as it was.
  await page.getByLabel('Customer (exact name, phone or email)').fill('+15551000000');
  await page.getByRole('button', { name: 'Send test', exact: true }).click();
  await expect(page.locator('p.notice')).toContainText(/^Test sent to .+ \(\+15551000000\) on Sandbox\.$/);
  await expect(page.getByLabel('Sandbox (sandbox)')).toBeChecked();
  await page.getByRole('button', { name: 'Send test to me' }).click();
  await expect(page.getByRole('alert')).toContainText('No customer has your email (staff@herald.test)');
  await page.getByRole('button', { name: 'Update' }).click();

  await expect(page.getByRole('status').first()).toContainText('“Spring launch” is scheduled for 1 Apr 2099, 10:00');
  await expect(row(page, 'Spring launch').locator('.status, td').filter({ hasText: 'Not processed' }).first()).toBeVisible();

  // Edit its time; the file and the condition are still there.
  await page.getByRole('link', { name: 'Spring launch' }).click();
  await expect(page.getByLabel(/Send at/)).toHaveValue('2099-04-01T10:00');
  await expect(page.locator('ul.attachments li')).toHaveText(/spring\.png/);
  await page.getByLabel(/Send at/).fill('2099-04-02T11:30');
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByLabel('Condition 1 value')).not.toHaveValue('');
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByLabel('Sandbox (sandbox)')).toBeChecked();
  await page.getByRole('button', { name: 'Update' }).click();
  await expect(page.getByRole('status').first()).toContainText('scheduled for 2 Apr 2099, 11:30');
});

test('the editor says what the message becomes on SMS, and an emoji turns it into three UCS-2 segments', async ({ page }) => {
  await signIn(page, 'staff');
  await page.getByRole('link', { name: 'New Broadcast' }).click();
  await hydrated(page);
  const sms = page.getByTestId('channel-fit').locator('li[data-kind="sms"]');
  // The editor is a lazy island: its emoji picker shows once it has hydrated (typing before
  // that would not reach it).
  await expect(page.getByText('Insert emoji')).toBeVisible();
  await page.getByLabel('Message').fill('a'.repeat(150));
  await expect(sms).toContainText('1 SMS segment, GSM-7, 150 characters');
  await page.getByLabel('Message').press('End');
  await page.getByText('Insert emoji').click();
  await page.getByRole('button', { name: 'Insert party popper' }).click();
  await expect(sms).toContainText('3 SMS segments, UCS-2');
  await expect(sms).toContainText('🎉');
  await expect(page.getByTestId('channel-fit').locator('li[data-kind="whatsapp"]')).toContainText('151 of 4,096 characters');
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

test('a sending broadcast offers pause, cancel and copy instead of editing', async ({ page }) => {
  await signIn(page, 'admin');
  await page.getByRole('link', { name: 'Black Friday early access' }).click();
  await expect(page.getByRole('status').first()).toContainText('This broadcast is sending: it can no longer be edited');
  await expect(page.getByRole('button', { name: 'Copy into a new draft' })).toBeVisible();
  // Cancelling asks first and says what it does; keeping it changes nothing.
  await page.getByRole('link', { name: 'Cancel broadcast' }).click();
  const question = page.getByRole('alertdialog', { name: 'Cancel “Black Friday early access”?' });
  await expect(question).toContainText(/\d+ messages not yet sent will never be sent\. The \d+ already sent stay in the results\./);
  await question.getByRole('link', { name: 'Keep it' }).click();
  await expect(page.getByRole('link', { name: 'Cancel broadcast' })).toBeVisible();
  await expect(page.getByRole('status').first()).toContainText('This broadcast is sending');
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  await expect(page.getByText('It is paused: nothing more is sent until it is resumed.')).toBeVisible();
  await page.getByRole('button', { name: 'Resume', exact: true }).click();
  await expect(page.getByRole('button', { name: 'Pause', exact: true })).toBeVisible();
  await expect(page.getByText('It is paused')).toHaveCount(0);
});
