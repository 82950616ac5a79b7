import AxeBuilder from '@axe-core/playwright';
// Runs after list.spec and nojs.spec (files run in name order): it adds a newer broadcast.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, expect, signIn, row, hydrated } from './fixtures';

/** A fake Telegram Bot API: answers sendMessage as Telegram does and remembers each call. */
async function fakeTelegram() {
  const calls: { chat_id: string; text: string; message_id: number }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const ok = req.method === 'POST' && req.url === '/bote2e:token/sendMessage';
      if (!ok) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: false, error_code: 404, description: 'Not Found' }));
        return;
      }
      const m = JSON.parse(body);
      const message_id = 500 + calls.length;
      calls.push({ chat_id: String(m.chat_id), text: m.text, message_id });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, result: { message_id, date: 0, chat: { id: Number(m.chat_id) } } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { calls, url: `http://127.0.0.1:${port}`, close: () => server.close() };
}

test('a Telegram broadcast: open a chat from its results, get an answer live, reply, and the provider has it', async ({ page, browser }) => {
  const telegram = await fakeTelegram();
  try {
    // An admin connects a Telegram bot that talks to the fake Bot API.
    await signIn(page, 'admin');
    await page.goto('/channels');
    await page.getByLabel('Kind').selectOption('telegram');
    await page.locator('#new-name').fill('E2E bot');
    await page.locator('#new-telegram-bot_token').fill('e2e:token');
    await page.locator('#new-telegram-webhook_secret').fill('e2e-webhook-secret');
    await page.locator('#new-telegram-base_url').fill(telegram.url);
    await page.getByRole('button', { name: 'Connect' }).click();
    // Herald is served at plain http here: it says Telegram needs https for replies.
    await expect(page.getByRole('status')).toContainText('Connected “E2E bot”.');
    await expect(page.getByRole('status')).toContainText('Telegram sends replies only to an https address');
    const hook = await page
      .locator('table.channels-list tbody tr', { hasText: 'E2E bot' })
      .locator('code')
      .textContent();
    const webhookPath = new URL(hook!).pathname;

    // Staff send a broadcast to VIPs on it.
    const staff = await (await browser.newContext()).newPage();
    await signIn(staff, 'staff');
    await staff.getByRole('link', { name: 'New Broadcast' }).click();
    await hydrated(staff);
    await staff.getByLabel('Name (only staff see it)').fill('Telegram VIP hello');
    await staff.getByLabel('Message').fill('Hello {{name}}, a VIP table is yours this week.');
    await staff.getByRole('button', { name: 'Next' }).click();
    await expect(staff).toHaveURL(/step=2$/);
    await staff.getByLabel('Condition 1 value').selectOption({ label: 'VIP' });
    await staff.getByRole('button', { name: 'Next' }).click();
    await expect(staff).toHaveURL(/step=3$/);
    await staff.getByLabel('E2E bot (telegram)').check();
    await staff.getByRole('button', { name: 'Send now' }).click();
    await hydrated(staff);
    await expect(row(staff, 'Telegram VIP hello').locator('.status')).toHaveText('Sent', { timeout: 20_000 });
    expect(telegram.calls.length).toBeGreaterThan(0);

    // Its results: Telegram reports no delivery or reads.
    await row(staff, 'Telegram VIP hello').getByRole('link', { name: 'View' }).click();
    await hydrated(staff);
    const resultsUrl = staff.url();
    await expect(staff.locator('[data-stat="received"] .stat-value')).toHaveText('not measured');
    await expect(staff.locator('[data-stat="read"] .stat-value')).toHaveText('not measured');
    const first = staff.locator('table.recipients tbody tr').first();
    const name = (await first.locator('td').first().textContent())!.trim();
    await first.getByRole('link', { name: 'Chat' }).click();
    await expect(staff.getByRole('heading', { level: 1 })).toHaveText(`Chat with ${name}`);
    await hydrated(staff);
    const sent = telegram.calls.find((c) => c.text.includes(`Hello ${name},`))!;
    expect(sent).toBeTruthy();
    await expect(staff.locator('ol.chat')).toContainText(`Hello ${name}, a VIP table is yours this week.`);

    // The customer answers in Telegram, quoting the broadcast: it appears without a reload.
    const answer = await staff.request.post(webhookPath, {
      headers: { 'X-Telegram-Bot-Api-Secret-Token': 'e2e-webhook-secret' },
      data: {
        update_id: 9001,
        message: {
          message_id: 77, date: 0, text: 'Can I bring a friend?',
          chat: { id: Number(sent.chat_id), type: 'private' },
          from: { id: Number(sent.chat_id), is_bot: false, first_name: name.split(' ')[0] },
          reply_to_message: { message_id: sent.message_id, date: 0, chat: { id: Number(sent.chat_id), type: 'private' } },
        },
      },
    });
    expect(answer.ok()).toBeTruthy();
    await expect(staff.locator('ol.chat li.msg.in')).toContainText('Can I bring a friend?', { timeout: 5_000 });

    // Take the chat and reply; the reply reaches the fake Bot API for that chat.
    await staff.getByRole('button', { name: 'Assign to me' }).click();
    await expect(staff.getByTestId('assignee')).toHaveText('Assigned to you');
    await hydrated(staff);
    await staff.getByLabel('Reply on E2E bot').fill('Of course, see you both on Friday!');
    await staff.getByRole('button', { name: 'Send reply' }).click();
    await expect(staff.locator('ol.chat li.msg.out').last()).toContainText('Of course, see you both on Friday!');
    await expect(staff.getByLabel('Reply on E2E bot')).toHaveValue('');
    await expect
      .poll(() => telegram.calls.find((c) => c.text === 'Of course, see you both on Friday!')?.chat_id)
      .toBe(sent.chat_id);
    // Customer on the left, staff on the right: live and after a reload alike.
    const sides = async () => {
      const list = (await staff.locator('ol.chat').boundingBox())!;
      const box = async (text: string) =>
        (await staff.locator('ol.chat > li.msg', { hasText: text }).boundingBox())!;
      const mine = await box('Of course, see you both on Friday!');
      const theirs = await box('Can I bring a friend?');
      return {
        staffRight: Math.round(list.x + list.width - (mine.x + mine.width)),
        customerLeft: Math.round(theirs.x - list.x),
        staffWidth: Math.round(mine.width),
      };
    };
    const live = await sides();
    expect(live.staffRight).toBeLessThanOrEqual(1);
    expect(live.customerLeft).toBeLessThanOrEqual(1);
    // Still there after a reload, drawn the same, and the broadcast now counts the reply.
    await staff.reload();
    await expect(staff.locator('ol.chat')).toContainText('Of course, see you both on Friday!');
    await hydrated(staff);
    expect(await sides()).toEqual(live);
    const axe = await new AxeBuilder({ page: staff }).analyze();
    expect(
      axe.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id),
    ).toEqual([]);
    await staff.goto(resultsUrl);
    await expect(staff.locator('[data-stat="reply"] .stat-value')).not.toHaveText('0 %');
    await expect(staff.locator('table.recipients tbody tr', { hasText: name }).locator('td').nth(8)).not.toHaveText('—');
  } finally {
    telegram.close();
  }
});
