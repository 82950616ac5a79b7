// Runs after list.spec and nojs.spec (files run in name order): it adds the newest broadcast.
import type { Page } from '@playwright/test';
import { test, expect, signIn, row, hydrated } from './fixtures';

/** Records the requests the page makes from now on (an event stream reconnecting aside). */
function requestsFrom(page: Page): string[] {
  const made: string[] = [];
  page.on('request', (r) => {
    if (!r.url().includes('/live?')) made.push(`${r.method()} ${r.url()}`);
  });
  return made;
}

test('a sending broadcast shows its progress rising without a reload or any polling', async ({ page }) => {
  await signIn(page, 'manager');
  // A demo broadcast in progress on the sandbox channel paced at one message a second.
  const progress = row(page, 'Order delay apology').locator('.progress-text');
  await expect(progress).toHaveText(/^\d+ of \d+$/);
  const made = requestsFrom(page);
  const done = async () => parseInt((await progress.textContent()) ?? '0', 10);
  const first = await done();
  await expect.poll(done, { timeout: 15_000 }).toBeGreaterThan(first);
  const second = await done();
  await expect.poll(done, { timeout: 15_000 }).toBeGreaterThan(second);
  await expect(row(page, 'Order delay apology').locator('.status')).toHaveText('Sending');
  // It rose twice (a few seconds) and the page asked the server nothing: the events came.
  expect(made).toEqual([]);
});

test('the results and the dashboard follow a sending broadcast without polling', async ({ page }) => {
  await signIn(page, 'manager');
  await row(page, 'Order delay apology').getByRole('link', { name: 'View' }).click();
  await hydrated(page);
  const sent = page.locator('[data-stat="sent"] .stat-value');
  const num = async () => parseInt(((await sent.textContent()) ?? '0').replace(/,/g, ''), 10);
  // The lazy island's code arrives first (an open event stream keeps the network busy, so a
  // short wait stands for "loaded"); from then on nothing is asked.
  await page.waitForTimeout(1500);
  const made = requestsFrom(page);
  const first = await num();
  await expect.poll(num, { timeout: 15_000 }).toBeGreaterThan(first);
  expect(made).toEqual([]);

  await page.goto('/dashboard');
  await hydrated(page);
  await page.waitForTimeout(1500);
  const onDashboard = requestsFrom(page);
  const cell = page.locator('table.dashboard tr', { has: page.getByText('Order delay apology', { exact: true }) }).locator('td.num').nth(1);
  const dash = async () => parseInt(((await cell.textContent()) ?? '0').replace(/,/g, ''), 10);
  const before = await dash();
  await expect.poll(dash, { timeout: 15_000 }).toBeGreaterThan(before);
  expect(onDashboard).toEqual([]);
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
  await expect(page.getByRole('status').first()).toContainText('“Flash sale now” goes in 3 seconds: undo now if that was a mistake.');
  await expect(page.getByTestId('undo')).toBeVisible();
  await hydrated(page);
  await expect(row(page, 'Flash sale now').locator('.status')).toHaveText('Sent', { timeout: 20_000 });
});

test('results: filter the table to failed, export it, and retry the failed ones', async ({ page }) => {
  await signIn(page, 'staff');
  await row(page, 'Flash sale now').getByRole('link', { name: 'View' }).click();
  await hydrated(page);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Flash sale now');
  // Undeliverable reports come up to 4 s after a send; let them all arrive, then read.
  await page.waitForTimeout(4500);
  await page.reload();
  // Sandbox refusals follow the address, so the VIP audience always has some.
  const failedCount = parseInt(
    ((await page.locator('[data-stat="failed"] .stat-value').textContent()) ?? '0').replace(/,/g, ''),
    10,
  );
  expect(failedCount).toBeGreaterThan(0);
  await page.getByLabel('Status').selectOption({ label: 'Failed' });
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/status=failed/);
  const rows = page.locator('table.recipients tbody tr');
  await expect(rows).toHaveCount(Math.min(failedCount, 50));
  for (const state of await rows.locator('td:nth-child(2) .delivery').allTextContents()) {
    expect(state).toBe('Failed');
  }
  await expect(rows.first().locator('.reason')).not.toBeEmpty();
  // The CSV holds the same rows.
  const download = page.waitForEvent('download');
  await page.getByRole('link', { name: 'Export CSV' }).click();
  const csv = await (await import('node:fs/promises')).readFile(await (await download).path(), 'utf8');
  expect(csv.trim().split('\n').length).toBe(failedCount + 1);
  // Retry failed: a new round for exactly those; the received ones are not sent again.
  const successful = await page.locator('[data-stat="sent"] .stat-value').textContent();
  await page.getByRole('button', { name: `Retry failed (${failedCount})` }).click();
  await expect(page.getByRole('status').first()).toContainText(`${failedCount} failed deliveries are being sent again.`);
  await hydrated(page);
  // It sends again and finishes: dead numbers fail again, nobody is counted twice.
  await expect(page.locator('[data-testid="results-status"] .status')).toHaveText('Sent', { timeout: 20_000 });
  const num = async (stat: string) =>
    parseInt(((await page.locator(`[data-stat="${stat}"] .stat-value`).textContent()) ?? '0').replace(/,/g, ''), 10);
  expect(await num('sent')).toBeGreaterThanOrEqual(parseInt((successful ?? '0').replace(/,/g, ''), 10));
  expect(await num('failed')).toBeGreaterThan(0);
  expect((await num('sent')) + (await num('failed'))).toBe(await num('audience'));
});
