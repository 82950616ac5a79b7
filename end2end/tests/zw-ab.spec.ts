// An A/B test from the wizard to the results: variant B is edited on its own tab (A's text
// kept), the even split goes to the VIPs, and the results compare A and B side by side.
import AxeBuilder from '@axe-core/playwright';
import { test, expect, signIn, row, hydrated } from './fixtures';

test('an A/B test: two variants edited apart, sent evenly, compared side by side', async ({ page }) => {
  await signIn(page, 'staff');
  await page.getByRole('link', { name: 'New Broadcast' }).click();
  await hydrated(page);
  await page.getByLabel('Name (only staff see it)').fill('Which hello works');
  await page.getByLabel('Message').fill('Hello A {{first_name|there}}');
  await page.getByRole('button', { name: 'Add variant B' }).click();
  // B starts as a copy of A, on its own tab; the name and time stay the broadcast's.
  await expect(page).toHaveURL(/step=1&variant=1$/);
  await expect(page.getByTestId('variant-editing')).toContainText('Variant B');
  await expect(page.getByLabel('Name (only staff see it)')).toHaveCount(0);
  await expect(page.getByLabel('Message')).toHaveValue('Hello A {{first_name|there}}');
  await page.getByLabel('Message').fill('Hello B {{first_name|there}}, 10 % off');
  await page.getByRole('button', { name: 'Variant A', exact: true }).click();
  await expect(page).toHaveURL(/step=1$/);
  await expect(page.getByLabel('Message')).toHaveValue('Hello A {{first_name|there}}');
  await page.getByRole('button', { name: 'Variant B', exact: true }).click();
  await expect(page.getByLabel('Message')).toHaveValue('Hello B {{first_name|there}}, 10 % off');
  await expect(page.getByLabel('Split the whole audience evenly between the variants')).toBeChecked();
  const axe = await new AxeBuilder({ page }).analyze();
  expect(axe.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id)).toEqual([]);
  // A variant that cannot be sent is named before anything goes.
  await page.getByLabel('Message').fill('Hello {{nick}}');
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByText('Variant B: Unknown placeholder {{nick}}')).toBeVisible();
  await page.getByLabel('Message').fill('Hello B {{first_name|there}}, 10 % off');
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page).toHaveURL(/step=2$/);
  await page.getByLabel('Condition 1 value').selectOption({ label: 'VIP' });
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page).toHaveURL(/step=3$/);
  await page.getByLabel('Sandbox (sandbox)').check();
  await page.getByRole('button', { name: 'Send now' }).click();
  await expect(page.getByRole('status').first()).toContainText('“Which hello works” goes in 3 seconds');
  await hydrated(page);
  await expect(row(page, 'Which hello works').locator('.status')).toHaveText('Sent', { timeout: 20_000 });

  await row(page, 'Which hello works').getByRole('link', { name: 'View' }).click();
  await hydrated(page);
  const ab = page.getByTestId('ab-results');
  await expect(ab).toContainText('split evenly between 2 variants');
  await expect(ab.locator('tbody tr')).toHaveCount(2);
  await expect(ab.locator('tr[data-variant="A"] th')).toContainText('Hello A');
  await expect(ab.locator('tr[data-variant="B"] th')).toContainText('Hello B');
  // The variants' audiences add up to the whole audience, and both got some.
  const audience = async (v: string) =>
    parseInt(((await ab.locator(`tr[data-variant="${v}"] [data-count="audience"]`).textContent()) ?? '0').replace(/,/g, ''), 10);
  const total = parseInt(((await page.locator('[data-stat="audience"] .stat-value').textContent()) ?? '0').replace(/,/g, ''), 10);
  const [a, b] = [await audience('A'), await audience('B')];
  expect(a).toBeGreaterThan(0);
  expect(b).toBeGreaterThan(0);
  expect(a + b).toBe(total);
  await expect(page.getByTestId('ab-verdict')).toContainText(/read rate/);
  // Each recipient's row names the variant they got.
  const variants = await page.locator('table.recipients [data-testid="variant"]').allTextContents();
  expect(variants.length).toBe(Math.min(total, 50));
  expect(new Set(variants)).toEqual(new Set(['Variant A', 'Variant B']));
  const results = await new AxeBuilder({ page }).analyze();
  expect(results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id)).toEqual([]);
});
