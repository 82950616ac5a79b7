import AxeBuilder from '@axe-core/playwright';
import { test, expect, signIn, hydrated } from './fixtures';

async function seriousViolations(page: import('@playwright/test').Page) {
  const result = await new AxeBuilder({ page }).analyze();
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}

test('the sign-in page has no serious accessibility violations', async ({ page }) => {
  await page.goto('/login');
  await hydrated(page);
  expect(await seriousViolations(page)).toEqual([]);
});

for (const role of ['manager', 'admin'] as const) {
  test(`the broadcast list (${role}) has no serious accessibility violations`, async ({ page }) => {
    await signIn(page, role);
    expect(await seriousViolations(page)).toEqual([]);
  });
}

test('the customers page has no serious accessibility violations', async ({ page }) => {
  await signIn(page, 'staff');
  await page.goto('/customers?tag=VIP');
  expect(await seriousViolations(page)).toEqual([]);
});

test('the customer edit page has no serious accessibility violations', async ({ page }) => {
  await signIn(page, 'staff');
  await page.goto('/customers');
  await page.locator('table.customers tbody td.name a').first().click();
  await expect(page.getByRole('button', { name: 'Save' })).toBeVisible();
  expect(await seriousViolations(page)).toEqual([]);
});

test('the tags page has no serious accessibility violations', async ({ page }) => {
  await signIn(page, 'staff');
  await page.goto('/labels');
  expect(await seriousViolations(page)).toEqual([]);
});

test('the import upload and preview pages have no serious accessibility violations', async ({ page }) => {
  await signIn(page, 'staff');
  await page.goto('/customers/import');
  expect(await seriousViolations(page)).toEqual([]);
  await page.getByLabel(/CSV file/).setInputFiles({
    name: 'a11y.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from('name,phone\nAxe Person,+15550000001\n'),
  });
  await page.getByRole('button', { name: 'Upload and preview' }).click();
  await expect(page.getByRole('button', { name: 'Import', exact: true })).toBeVisible();
  expect(await seriousViolations(page)).toEqual([]);
});

test('the audit log has no serious accessibility violations and filters without JavaScript', async ({ page }) => {
  await signIn(page, 'manager');
  await page.getByRole('link', { name: 'Audit log' }).click();
  await expect(page.getByRole('heading', { name: 'Audit log' })).toBeVisible();
  expect(await seriousViolations(page)).toEqual([]);
  await page.getByLabel('Action').selectOption('sign_in');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/action=sign_in/);
  const actions = await page.locator('table.audit tbody tr').evaluateAll((rows) =>
    rows.map((r) => r.getAttribute('data-action')),
  );
  expect(actions.length).toBeGreaterThan(0);
  expect(new Set(actions)).toEqual(new Set(['sign_in']));
});

test('the dashboard draws its rates chart, names a point on focus, and has no serious accessibility violations', async ({ page }) => {
  await signIn(page, 'manager');
  await page.goto('/dashboard');
  await hydrated(page);
  const all = page.locator('figure.rate-chart[data-chart="All channels"]');
  await expect(all).toBeVisible();
  const points = all.locator('a.point');
  expect(await points.count()).toBeGreaterThan(3);
  // A point links to its broadcast and names it; focused, its name shows on the chart.
  const first = points.first();
  await expect(first).toHaveAttribute('href', /^\/broadcasts\/\d+$/);
  const label = (await first.getAttribute('aria-label')) ?? '';
  expect(label).toMatch(/, started .+: (received|read|replied) rate \d/);
  await first.focus();
  await expect(first.locator('text.tip')).toBeVisible();
  expect(await seriousViolations(page)).toEqual([]);
});
