import { test, expect, signIn } from './fixtures';

test('the customers page lists, searches and filters by tag', async ({ page }) => {
  await signIn(page, 'staff');
  await page.getByRole('link', { name: 'Customers' }).click();
  await expect(page.getByRole('heading', { name: 'Customers' })).toBeVisible();
  const rows = page.locator('table.customers tbody tr');
  await expect(rows).toHaveCount(25);
  await expect(page.getByRole('link', { name: 'Next →' })).toBeVisible();

  await page.getByRole('searchbox', { name: 'Search customers' }).fill('smith');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page).toHaveURL(/q=smith/);
  for (const name of await page.locator('table.customers tbody td.name').allTextContents()) {
    expect(name.toLowerCase()).toContain('smith');
  }

  await page.getByRole('searchbox', { name: 'Search customers' }).fill('');
  await page.getByLabel('Tag', { exact: true }).selectOption('VIP');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page).toHaveURL(/tag=VIP/);
  const count = await rows.count();
  expect(count).toBeGreaterThan(0);
  for (let i = 0; i < count; i++) {
    await expect(rows.nth(i).locator('td.tags')).toContainText('VIP');
  }
  await page.getByRole('link', { name: 'Next →' }).click();
  await expect(page).toHaveURL(/tag=VIP&after=\d+/);
  await expect(rows.first().locator('td.tags')).toContainText('VIP');
  await expect(page.getByLabel('Tag', { exact: true })).toHaveValue('VIP');
});

test('the filtered customers export downloads as CSV', async ({ page }) => {
  await signIn(page, 'manager');
  await page.goto('/customers?tag=Wholesale');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Export these customers (CSV)' }).click(),
  ]);
  expect(download.suggestedFilename()).toBe('customers.csv');
  const fs = await import('node:fs/promises');
  const text = await fs.readFile(await download.path(), 'utf8');
  const lines = text.trim().split('\n');
  expect(lines[0]).toBe('name,phone,email,whatsapp_id,telegram_chat_id,tags,robot_groups,assignee_email,time_zone,opted_out');
  expect(lines.length).toBeGreaterThan(100);
  for (const line of lines.slice(1)) expect(line).toContain('Wholesale');
});

test('staff tick customers and tag them; managers cannot', async ({ page }) => {
  await signIn(page, 'staff');
  await page.goto('/customers?q=garc');
  const rows = page.locator('table.customers tbody tr');
  const first = await rows.nth(0).locator('td.name').textContent();
  const second = await rows.nth(1).locator('td.name').textContent();
  await rows.nth(0).getByRole('checkbox').check();
  await rows.nth(1).getByRole('checkbox').check();
  await page.getByLabel('Tag for the ticked customers').fill('Spring 2027');
  await page.getByRole('button', { name: 'Add tag' }).click();
  await expect(page.getByRole('status')).toContainText('Tagged 2 customers');
  await expect(page).toHaveURL(/q=garc/);
  await page.goto('/customers?tag=Spring%202027');
  await expect(page.locator('table.customers tbody td.name')).toHaveText([first!, second!].sort());

  await page.getByRole('button', { name: 'Sign out' }).click();
  await signIn(page, 'manager');
  await page.goto('/customers');
  await expect(page.getByRole('button', { name: 'Add tag' })).toHaveCount(0);
  await expect(page.locator('table.customers tbody input[type=checkbox]')).toHaveCount(0);
});

test('staff open a customer, fix a mistake without losing what they typed, and save', async ({ page }) => {
  await signIn(page, 'staff');
  await page.goto('/customers?q=nguyen');
  await page.locator('table.customers tbody td.name a').first().click();
  await expect(page.getByLabel('Name')).toBeVisible();
  await page.getByLabel('Name').fill('Linh Nguyen');
  await page.getByLabel('Email').fill('not-an-email');
  await page.getByLabel('Tags').fill('VIP, Early adopter');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('alert')).toContainText('is not an email address');
  await expect(page.getByLabel('Name')).toHaveValue('Linh Nguyen');
  await expect(page.getByLabel('Tags')).toHaveValue('VIP, Early adopter');
  await page.getByLabel('Email').fill('linh@example.com');
  await page.getByLabel('Time zone').fill('Asia/Ho_Chi_Minh');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('status')).toHaveText('Saved.');
  await expect(page.getByRole('heading', { name: 'Linh Nguyen' })).toBeVisible();
  await expect(page.getByLabel('Email')).toHaveValue('linh@example.com');
  await page.goto('/customers?tag=Early%20adopter');
  await expect(page.locator('table.customers tbody td.name')).toHaveText(['Linh Nguyen']);
});

test('tags are created, renamed and deleted on the tags page; managers only look', async ({ page }) => {
  await signIn(page, 'admin');
  await page.getByRole('link', { name: 'Tags & groups' }).click();
  await page.getByLabel('New tag').fill('Trade fair 2027');
  await page.getByRole('button', { name: 'Create' }).first().click();
  await expect(page.getByRole('status')).toHaveText('Created the tag “Trade fair 2027”.');
  await page.getByLabel('New name for Trade fair 2027').fill('Trade fair Berlin');
  await page.locator('tr[data-name="Trade fair 2027"]').getByRole('button', { name: 'Rename' }).click();
  await expect(page.getByRole('status')).toHaveText('Renamed to “Trade fair Berlin”.');
  // Deleting asks first and says how many customers carry it.
  const vipCount = (await page.locator('tr[data-name="VIP"] td').nth(1).textContent())!.trim();
  await page.getByLabel('Delete VIP').click();
  const question = page.getByRole('alertdialog', { name: 'Delete the tag “VIP”?' });
  await expect(question).toContainText(`${vipCount} customers carry it and will lose it.`);
  await question.getByRole('link', { name: 'Keep it' }).click();
  await expect(page.locator('tr[data-name="VIP"]')).toHaveCount(1);
  await page.getByLabel('Delete Trade fair Berlin').click();
  await expect(page.getByRole('alertdialog')).toContainText('No customer carries it.');
  await page.getByRole('button', { name: 'Delete the tag' }).click();
  await expect(page.getByRole('status')).toHaveText('Deleted the tag.');
  await expect(page.locator('tr[data-name="Trade fair Berlin"]')).toHaveCount(0);
  // A duplicate name is refused with a clear message.
  await page.getByLabel('New tag').fill('VIP');
  await page.getByRole('button', { name: 'Create' }).first().click();
  await expect(page.getByRole('alert')).toContainText('already taken');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await signIn(page, 'manager');
  await page.goto('/labels');
  await expect(page.locator('tr[data-name="VIP"]')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Create' })).toHaveCount(0);
});
