import { test, expect, signIn } from './fixtures';

const csv = [
  'Full name,Mobile,Email,Tags,Time zone',
  '"Iris Importer",+44 20 7946 0201,iris@example.org,Autumn import,Europe/London',
  '"Ivo Importer, Jr.",+44 20 7946 0202,,Autumn import;VIP,Europe/Berlin',
  'Bad Phone Importer,12345,,Autumn import,',
  '"Isa\nImporter",,isa@example.org,Autumn import,UTC',
].join('\n');

test('import a CSV through the pages, then tag and filter the new customers', async ({ page }) => {
  await signIn(page, 'staff');
  await page.goto('/customers');
  await page.getByRole('link', { name: 'Import customers (CSV)' }).click();
  await expect(page.getByRole('heading', { name: 'Import customers' })).toBeVisible();
  await page.getByLabel(/CSV file/).setInputFiles({ name: 'people.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.getByRole('button', { name: 'Upload and preview' }).click();

  // The preview: the guessed mapping and the first lines, the bad one flagged.
  await expect(page).toHaveURL(/\/customers\/import\/[0-9a-f]{32}$/);
  await expect(page.getByLabel('Mobile')).toHaveValue('phone');
  await expect(page.getByLabel('Full name')).toHaveValue('name');
  const lines = page.locator('table.preview tbody tr');
  await expect(lines).toHaveCount(4);
  await expect(lines.nth(2)).toContainText('not a phone number');

  // All or nothing: the bad line stops the import and is reported with its line number.
  await page.getByRole('button', { name: 'Import', exact: true }).click();
  await expect(page.getByRole('alert')).toContainText('1 line cannot be imported, so nothing was imported');
  await expect(page.locator('table.line-errors tbody tr')).toHaveText([/^4\s*.*not a phone number/]);
  await page.goto('/customers?q=Importer');
  await expect(page.locator('table.customers tbody tr')).toHaveCount(0);

  // Again, skipping the bad line.
  await page.goto('/customers/import');
  await page.getByLabel(/CSV file/).setInputFiles({ name: 'people.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.getByRole('button', { name: 'Upload and preview' }).click();
  await page.getByLabel(/Skip them and import the rest/).check();
  await page.getByRole('button', { name: 'Import', exact: true }).click();
  await expect(page.getByRole('status')).toContainText('3 new customers, 0 updated');
  await expect(page.locator('table.line-errors')).toContainText('not a phone number');

  await page.getByRole('link', { name: 'See the customers' }).click();
  await page.goto('/customers?q=Importer');
  const rows = page.locator('table.customers tbody tr');
  await expect(rows).toHaveCount(3);
  await expect(rows.first()).toContainText('Autumn import');

  // Tag two of them, then filter by that tag.
  await rows.nth(0).getByRole('checkbox').check();
  await rows.nth(1).getByRole('checkbox').check();
  await page.getByLabel('Tag for the ticked customers').fill('Called back');
  await page.getByRole('button', { name: 'Add tag' }).click();
  await expect(page.getByRole('status')).toContainText('Tagged 2 customers');
  await page.goto('/customers');
  await page.getByLabel('Tag', { exact: true }).selectOption('Called back');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.locator('table.customers tbody tr')).toHaveCount(2);
});

test('an upload that is not CSV text is refused with a message', async ({ page }) => {
  await signIn(page, 'staff');
  await page.goto('/customers/import');
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52]);
  await page.getByLabel(/CSV file/).setInputFiles({ name: 'customers.csv', mimeType: 'text/csv', buffer: png });
  await page.getByRole('button', { name: 'Upload and preview' }).click();
  await expect(page.getByRole('alert')).toContainText('is an image');
  await expect(page).toHaveURL(/\/customers\/import\?error=/);
});

test('managers cannot import', async ({ page }) => {
  await signIn(page, 'manager');
  await page.goto('/customers');
  await expect(page.getByRole('link', { name: 'Import customers (CSV)' })).toHaveCount(0);
  await page.goto('/customers/import');
  await expect(page.getByRole('alert')).toBeVisible();
  await expect(page.getByLabel(/CSV file/)).toHaveCount(0);
});
