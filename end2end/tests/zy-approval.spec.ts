// Runs near the end (files run in name order): while its rule is on, every large broadcast
// waits for an admin; it turns the rule off again before it ends.
import { test, expect, signIn, row, hydrated } from './fixtures';

test('staff submit a large broadcast for approval and an admin approves it from the list', async ({ page, browser }) => {
  test.setTimeout(90_000);
  const admin = await (await browser.newContext()).newPage();
  await signIn(admin, 'admin');
  await admin.getByRole('link', { name: 'Settings' }).click();
  await admin.getByLabel('More customers than').fill('1');
  await admin.getByLabel(/^Price table/).fill('email 0.0125\ntelegram 0');
  await admin.getByRole('button', { name: 'Save settings' }).click();
  await expect(admin.getByRole('status')).toContainText('approval for broadcasts reaching more than 1 customers');
  try {
    await signIn(page, 'staff');
    await page.getByRole('link', { name: 'New Broadcast' }).click();
    await hydrated(page);
    await page.getByLabel('Name (only staff see it)').fill('Needs a second look');
    await page.getByLabel('Message').fill('Hi {{first_name|there}}, big news');
    await page.getByRole('button', { name: 'Next' }).click();
    await expect(page).toHaveURL(/step=2$/);
    await page.getByLabel('Condition 1 value').selectOption({ label: 'VIP' });
    await page.getByRole('button', { name: 'Next' }).click();
    await expect(page).toHaveURL(/step=3$/);
    await page.getByLabel('Sandbox (sandbox)').check();
    await page.getByRole('button', { name: 'Send now' }).click();
    await expect(page.getByRole('status').first()).toContainText('needs an admin\'s approval before it is sent');
    // Drafts sort last: the search finds it.
    await page.goto('/?q=Needs%20a%20second%20look');
    await hydrated(page);
    await expect(row(page, 'Needs a second look').getByTestId('approval')).toContainText('Awaiting approval');
    // Staff get no approve button; the broadcast waits as a draft.
    await expect(row(page, 'Needs a second look').getByRole('button', { name: 'Approve' })).toHaveCount(0);

    await admin.goto('/?q=Needs%20a%20second%20look');
    await hydrated(admin);
    const mine = row(admin, 'Needs a second look');
    await expect(mine.getByTestId('approval')).toContainText(/reaches [\d,]+ customers/);
    await mine.getByLabel(/Comment on “Needs a second look”/).fill('Checked the wording');
    await mine.getByRole('button', { name: 'Approve' }).click();
    await expect(admin.getByRole('status').first()).toContainText('goes in 3 seconds');
    await admin.goto('/?q=Needs%20a%20second%20look');
    await hydrated(admin);
    await expect(row(admin, 'Needs a second look').locator('.status')).toHaveText('Sent', { timeout: 30_000 });
  } finally {
    await admin.goto('/settings');
    await admin.getByLabel('More customers than').fill('');
    await admin.getByLabel(/^Price table/).fill('');
    await admin.getByRole('button', { name: 'Save settings' }).click();
    await expect(admin.getByRole('status')).toContainText('no approval');
  }
});
