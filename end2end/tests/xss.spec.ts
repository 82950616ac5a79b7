// Runs last (files run in name order): it adds a tag, a broadcast and messages carrying
// markup, then checks every page that shows them draws them as text and runs nothing.
import { test, expect, signIn, hydrated, row } from './fixtures';

const TAG = '<img src=x onerror=alert("tag")>';
const NAME = '<script>alert("name")</script>Eve';
const BROADCAST = '<img src=x onerror=alert("broadcast")>';
const BODY = '<script>alert("body")</script> Hi {{first_name|there}}';
const FILE = '<img src=x onerror=alert(1)>.png';
const INBOUND = '<img src=x onerror=alert("inbound")> thanks';
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

test('names, tags, messages, file names and inbound texts with markup are shown as text everywhere', async ({ page }) => {
  const dialogs: string[] = [];
  page.on('dialog', async (d) => {
    dialogs.push(d.message());
    await d.dismiss();
  });
  /** The page shows `text` literally and holds no element the payloads would make. */
  const showsAsText = async (text: string) => {
    await expect(page.locator('body')).toContainText(text);
    await expect(page.locator('img[src="x"]')).toHaveCount(0);
    const scripts = await page.locator('script').evaluateAll((s) => s.map((e) => e.textContent ?? ''));
    expect(scripts.filter((s) => s.includes('alert('))).toEqual([]);
  };

  // An admin connects a bot whose webhook the customer will write through.
  await signIn(page, 'admin');
  await page.goto('/channels');
  await page.getByLabel('Kind').selectOption('telegram');
  await page.locator('#new-name').fill('XSS bot');
  await page.locator('#new-telegram-bot_token').fill('xss:token');
  await page.locator('#new-telegram-webhook_secret').fill('xss-webhook-secret');
  await page.locator('#new-telegram-base_url').fill('http://127.0.0.1:9');
  await page.getByRole('button', { name: 'Connect' }).click();
  await expect(page.getByRole('status')).toContainText('Connected “XSS bot”.');
  const hook = await page.locator('table.channels-list tbody tr', { hasText: 'XSS bot' }).locator('code').textContent();
  const webhookPath = new URL(hook!).pathname;

  // A tag, then a customer named and tagged with markup, reachable on Telegram.
  await page.goto('/labels');
  await page.getByLabel('New tag').fill(TAG);
  await page.getByRole('button', { name: 'Create' }).first().click();
  await showsAsText(TAG);
  await page.goto('/customers');
  await page.locator('table.customers tbody td.name a').first().click();
  await expect(page.getByRole('button', { name: 'Save' })).toBeVisible();
  const customerUrl = page.url();
  await page.getByLabel('Name').fill(NAME);
  await page.getByLabel('Tags').fill(`VIP, ${TAG}`);
  await page.getByLabel(/Telegram/).fill('777001');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('status')).toHaveText('Saved.');
  await showsAsText(NAME);
  await expect(page.getByLabel('Name')).toHaveValue(NAME);
  await page.goto(`/customers?tag=${encodeURIComponent(TAG)}`);
  await showsAsText(NAME);

  // The customer writes in; the chat shows it as text, live and after a reload.
  const chatUrl = customerUrl.replace(/\/?$/, '/chat');
  await page.goto(chatUrl);
  await hydrated(page);
  const answer = await page.request.post(webhookPath, {
    headers: { 'X-Telegram-Bot-Api-Secret-Token': 'xss-webhook-secret' },
    data: {
      update_id: 7001,
      message: { message_id: 5, date: 0, text: INBOUND, chat: { id: 777001, type: 'private' }, from: { id: 777001, is_bot: false, first_name: 'Eve' } },
    },
  });
  expect(answer.ok()).toBeTruthy();
  await expect(page.locator('ol.chat li.msg.in')).toContainText(INBOUND, { timeout: 5_000 });
  await showsAsText(INBOUND);
  await page.reload();
  await showsAsText(INBOUND);
  await showsAsText(NAME);

  // A broadcast named and written with markup, carrying a file named with markup.
  await page.goto('/broadcasts/new');
  await hydrated(page);
  await page.getByLabel('Name (only staff see it)').fill(BROADCAST);
  await page.getByLabel('Message').fill(BODY);
  await page.locator('input[type="file"]').setInputFiles({ name: FILE, mimeType: 'image/png', buffer: PNG });
  await expect(page.locator('body')).toContainText(FILE);
  await showsAsText(FILE);
  await page.getByRole('button', { name: 'Save draft and leave' }).click();
  await expect(page.getByRole('status').first()).toContainText('Saved the draft');
  await showsAsText(BROADCAST);
  await row(page, BROADCAST).getByRole('link', { name: BROADCAST }).click();
  await expect(page.getByLabel('Message')).toHaveValue(BODY);
  await showsAsText(FILE);

  // The audit log quotes names in its details.
  await page.goto('/audit');
  await expect(page.locator('img[src="x"]')).toHaveCount(0);
  await page.goto('/labels');
  await showsAsText(TAG);
  expect(dialogs).toEqual([]);
});
