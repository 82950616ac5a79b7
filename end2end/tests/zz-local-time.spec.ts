// Runs last (files run in name order): its broadcast then stays Sending, waiting for later
// waves, for hours, at the top of the list. The demo's customers live from Sydney to Los
// Angeles, so a time a minute or two from now in Sydney reaches Sydney first and the other
// zones hours later.
import { test, expect, signIn, row, hydrated } from './fixtures';

/** `now + ms` as Sydney's wall clock, to the minute: `2026-12-08T01:23`. */
function sydneyClock(ms: number): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: 'Australia/Sydney',
    year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).formatToParts(new Date(Date.now() + ms));
  const p = (t: string) => parts.find((x) => x.type === t)!.value;
  return `${p('year')}-${p('month')}-${p('day')}T${p('hour')}:${p('minute')}`;
}

test('a local-time broadcast goes zone by zone and the list shows its next wave', async ({ page }) => {
  test.setTimeout(180_000);
  await signIn(page, 'staff');
  await page.getByRole('link', { name: 'New Broadcast' }).click();
  await hydrated(page);
  await page.getByLabel('Name (only staff see it)').fill('Morning in every zone');
  await page.getByLabel('Message').fill('Good morning {{first_name|there}} ☀');
  await page.getByLabel(/Send at/).fill(sydneyClock(90_000));
  await page.getByLabel(/each customer's own time zone/).check();
  await page.getByLabel(/Don't deliver after/).fill('48');
  await expect(page.getByTestId('quiet-note')).toContainText('no quiet hours');
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page).toHaveURL(/step=2$/);
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page).toHaveURL(/step=3$/);
  await page.getByLabel('Sandbox (sandbox)').check();
  await page.getByRole('button', { name: 'Update' }).click();
  const notice = page.getByRole('status').first();
  await expect(notice).toContainText('in each customer\'s own time zone; the first wave goes at');
  await hydrated(page);
  const status = row(page, 'Morning in every zone').locator('.status');
  await expect(status).toHaveText('Not processed');
  // Sydney's wave goes; the next is Tokyo's, two hours later, with everyone else waiting.
  await expect(status).toHaveText(/^Sending — next wave \d\d:\d\d Asia\/Tokyo \([\d,]+ waiting\)$/, {
    timeout: 150_000,
  });
  // The results say the same, and the wizard reopens the broadcast's time as typed.
  await row(page, 'Morning in every zone').getByRole('link', { name: 'View' }).click();
  await expect(page.getByTestId('next-wave')).toContainText('next wave');
  await expect(page.getByTestId('next-wave')).toContainText('Asia/Tokyo');
});
