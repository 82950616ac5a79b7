import { test, expect, signIn, row, names, hydrated, GROUPS, expectGroupFirst } from './fixtures';

test.beforeEach(async ({ page }) => {
  await signIn(page, 'staff');
});

test('the list shows seeded broadcasts with dates, statuses and toggles', async ({ page }) => {
  const headers = page.locator('table.broadcasts thead th');
  await expect(headers).toHaveText(['Name', /Created/, /Sending date/, /Status/, 'Active', 'Results']);
  await expect(row(page, 'Black Friday early access').locator('.status')).toHaveText('Sending');
  await expect(row(page, 'Cyber Monday reminder').locator('.status')).toHaveText('Not processed');
  await expect(row(page, 'Beta feature invite').locator('.status')).toHaveText('Paused');
  await expect(row(page, 'November newsletter').locator('.status')).toHaveText('Sent');
  await expect(row(page, 'Draft: referral programme').locator('.status')).toHaveText('Draft');
  await expect(row(page, 'Cyber Monday reminder')).toContainText('(scheduled)');
  await expect(row(page, 'Draft: referral programme').locator('td').nth(2)).toHaveText('—');
  // Sort by status (the default): sending first, drafts last.
  const statuses = await page.locator('table.broadcasts tbody .status').allTextContents();
  const order = ['Sending', 'Not processed', 'Paused', 'Sent', 'Failed', 'Cancelled', 'Draft'];
  const ranks = statuses.map((s) => order.indexOf(s));
  expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
});

test('search narrows the list by name or message text and lives in the URL', async ({ page }) => {
  await page.getByRole('searchbox', { name: 'Search broadcasts' }).fill('black friday');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page).toHaveURL(/q=black(\+|%20)friday/);
  await expect(page.locator('table.broadcasts tbody tr')).toHaveCount(1);
  expect(await names(page)).toEqual(['Black Friday early access']);

  // Message text too: "refunded" is only in a body.
  await page.goto('/?q=refunded');
  expect(await names(page)).toEqual(['Order delay apology']);
  await page.reload();
  expect(await names(page)).toEqual(['Order delay apology']);
  await expect(page.getByRole('searchbox')).toHaveValue('refunded');

  await page.goto('/?q=nothing-matches-this');
  await expect(page.getByText('No broadcasts match')).toBeVisible();
});

test('sorting by a column reorders and flips, and survives reload', async ({ page }) => {
  await page.getByRole('link', { name: 'Created' }).click();
  await expect(page).toHaveURL(/sort=created&dir=desc/);
  await expect(page.locator('table.broadcasts tbody td.name').first()).toHaveText('Draft: feedback follow-up');
  await page.getByRole('link', { name: /Created/ }).click();
  await expect(page).toHaveURL(/sort=created&dir=asc/);
  await expect(page.locator('table.broadcasts tbody td.name').first()).toHaveText('Spring sale');
  await page.reload();
  await expect(page.locator('table.broadcasts tbody td.name').first()).toHaveText('Spring sale');
  await expect(page.locator('th[aria-sort="ascending"]')).toContainText('Created');

  await page.getByRole('link', { name: 'Sending date' }).click();
  await expect(page).toHaveURL(/sort=send&dir=desc/);
  await expect(page.locator('table.broadcasts tbody td.name').first()).toHaveText('Draft: app launch');
});

test('"Sort by" puts each chosen group first as soon as it is chosen, and keeps it in the URL', async ({ page }) => {
  for (const [label, status, param] of GROUPS) {
    await page.getByLabel('Sort by').selectOption({ label });
    await expect(page).toHaveURL(new RegExp(`sort=${param}`));
    await hydrated(page);
    await expect(page.getByLabel('Sort by')).toHaveValue(param);
    await expectGroupFirst(page, status);
  }
  await page.getByLabel('Sort by').selectOption({ label: 'Newest created' });
  await expect(page).toHaveURL(/sort=created/);
  await expect(page.locator('table.broadcasts tbody td.name').first()).toHaveText('Draft: feedback follow-up');
  // The status header flips the chosen order and keeps the group.
  await page.goto('/?sort=sent');
  await page.getByRole('link', { name: /Status/ }).click();
  await expect(page).toHaveURL(/sort=sent&dir=desc/);
  const statuses = await page.locator('table.broadcasts tbody .status').allTextContents();
  expect(statuses[statuses.length - 1]).toBe('Sent');
});

test('bad list parameters get a message, not an error page', async ({ page }) => {
  await page.goto(`/?sort=hacker&dir=sideways&after=123456789012345678901234567890&q=${'x'.repeat(500)}`);
  await expect(page.getByText('Unknown sort "hacker"')).toBeVisible();
  await expect(page.getByText('That page link is not valid')).toBeVisible();
  await expect(page.getByText(/was cut/)).toBeVisible();
});
