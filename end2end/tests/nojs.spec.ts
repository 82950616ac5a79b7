import { test, expect, signIn, row, names, USERS, GROUPS, expectGroupFirst } from './fixtures';

test.use({ javaScriptEnabled: false });

test('without JavaScript: sign in, list, search and sort work as plain pages', async ({ page }) => {
  await page.goto('/login');
  await page.getByLabel('Email').fill(USERS.manager);
  await page.getByLabel('Password').fill('wrong');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Wrong email or password.');
  await expect(page.getByLabel('Email')).toHaveValue(USERS.manager);

  await signIn(page, 'manager', { js: false });
  await expect(page.locator('table.broadcasts tbody tr')).toHaveCount(20);
  await page.getByRole('searchbox', { name: 'Search broadcasts' }).fill('newsletter');
  await page.getByRole('button', { name: 'Search' }).click();
  expect(await names(page)).toEqual(['November newsletter']);
  await page.goto('/');
  await page.getByRole('link', { name: 'Created' }).click();
  await expect(page.locator('table.broadcasts tbody td.name').first()).toHaveText('Draft: feedback follow-up');
});

test('without JavaScript "Sort by" works as a form', async ({ page }) => {
  await signIn(page, 'staff', { js: false });
  for (const [label, status, param] of GROUPS) {
    await page.getByLabel('Sort by').selectOption({ label });
    await page.getByRole('button', { name: 'Sort', exact: true }).click();
    await expect(page).toHaveURL(new RegExp(`sort=${param}`));
    await expectGroupFirst(page, status);
  }
});

test('without JavaScript an admin can still pause and resume', async ({ page }) => {
  await signIn(page, 'admin', { js: false });
  await row(page, 'Holiday opening hours').getByRole('switch').click();
  await expect(row(page, 'Holiday opening hours').locator('.status')).toHaveText('Paused');
  await row(page, 'Holiday opening hours').getByRole('switch').click();
  await expect(row(page, 'Holiday opening hours').locator('.status')).toHaveText('Not processed');
});

test('without JavaScript a CSV import works: upload, change a column, import', async ({ page }) => {
  await signIn(page, 'staff', { js: false });
  await page.goto('/customers/import');
  const csv = 'Who,Phone,Note\nNadia NoScript,+44 20 7946 0301,x\nNils NoScript,+44 20 7946 0302,y\n';
  await page.getByLabel(/CSV file/).setInputFiles({ name: 'nojs.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.getByRole('button', { name: 'Upload and preview' }).click();
  // "Who" is not a header Herald knows: importing without a name column is refused, the
  // choices stay, and choosing Name for it fixes that.
  await page.getByRole('button', { name: 'Import', exact: true }).click();
  await expect(page.getByRole('alert')).toContainText('“name” column');
  await expect(page.getByLabel('Phone')).toHaveValue('phone');
  await page.getByLabel('Who').selectOption('name');
  await page.getByRole('button', { name: 'Update preview' }).click();
  await expect(page.getByLabel('Who')).toHaveValue('name');
  await expect(page.locator('table.preview tbody tr').first()).toContainText('OK');
  await page.getByRole('button', { name: 'Import', exact: true }).click();
  await expect(page.getByRole('status')).toContainText('2 new customers');
  await page.goto('/customers?q=NoScript');
  await expect(page.locator('table.customers tbody tr')).toHaveCount(2);
});

test('without JavaScript the wizard attaches files, adds conditions and counts', async ({ page }) => {
  await signIn(page, 'staff', { js: false });
  await page.getByRole('link', { name: 'New Broadcast' }).click();
  await page.getByLabel('Name (only staff see it)').fill('Plain form');
  await page.getByLabel('Message').fill('Hi {{first_name}}');
  const png = Buffer.from(
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
    'base64',
  );
  await page.getByLabel(/Add a file/).setInputFiles({ name: 'plain.png', mimeType: 'image/png', buffer: png });
  await page.getByRole('button', { name: 'Attach' }).click();
  await expect(page.locator('ul.attachments li')).toContainText('plain.png');
  await expect(page.getByLabel('Message')).toHaveValue('Hi {{first_name}}');
  await expect(page.locator('section.preview .bubble')).toHaveText(/^Hi \S+$/);
  await page.getByRole('button', { name: 'Next' }).click();
  const count = page.locator('.audience-count');
  const everyone = await count.textContent();
  await page.getByLabel('Condition 1 value').selectOption({ label: 'VIP' });
  await page.getByRole('button', { name: 'Apply and count' }).click();
  await expect(count).not.toHaveText(everyone ?? '');
  await expect(page.getByLabel('Condition 2 value')).toHaveValue('');
  await page.getByRole('button', { name: 'Back' }).click();
  await expect(page.locator('ul.attachments li')).toContainText('plain.png');
  await page.getByRole('button', { name: 'Remove plain.png' }).click();
  await expect(page.locator('ul.attachments li')).toHaveCount(0);
});
