import { test, expect, signIn, row, hydrated } from './fixtures';
import { spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';

// This file runs last (files run in name order, hence `z-`): it adds two sent broadcasts to
// the shared list, which would push the drafts other tests look for off the list's first page.
//
// Herald's strict Cloud API fake (src/server/fakes/whatsapp.rs) as a process: it serves the
// templates below, refuses template messages that do not fit them, fails free text outside
// the 24-hour window (131047) and marketing templates past one per customer (131049).
const TEMPLATES = [
  {
    name: 'spring_sale', language: 'en_US', status: 'APPROVED', category: 'MARKETING',
    parameter_format: 'POSITIONAL', quality_score: { score: 'GREEN' },
    components: [
      { type: 'BODY', text: 'Hi {{1}}, our spring sale starts {{2}}.' },
      { type: 'FOOTER', text: 'Reply STOP to opt out' },
      { type: 'BUTTONS', buttons: [{ type: 'URL', text: 'Shop', url: 'https://shop.example/s/{{1}}' }] },
    ],
  },
  {
    name: 'old_sale', language: 'en_US', status: 'PAUSED', category: 'MARKETING',
    components: [{ type: 'BODY', text: 'Old' }],
  },
];

type Fake = {
  base_url: string; control: string; phone_number_id: string; access_token: string;
  app_secret: string; waba_id: string; process: ChildProcess;
};

async function startFake(): Promise<Fake> {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'herald-fake-')), 'templates.json');
  fs.writeFileSync(file, JSON.stringify(TEMPLATES));
  const bin = process.env.HERALD_FAKE ?? path.resolve(__dirname, '../../target/debug/herald-fake');
  const child = spawn(bin, ['whatsapp', file, '--marketing-per-user', '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const first = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`herald-fake exited with ${code}`)));
  });
  return { ...JSON.parse(first), process: child };
}

/** The rows of a CSV text, each a list of cells (quoted cells may hold commas, quotes and
 * line breaks, as the export writes them). */
function rows(text: string): string[][] {
  const out: string[][] = [];
  let row: string[] = [], cur = '', quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cur += '"'; i++; }
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(cur); cur = ''; }
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cur); out.push(row); row = []; cur = '';
    } else cur += c;
  }
  if (cur !== '' || row.length > 0) { row.push(cur); out.push(row); }
  return out;
}

test('a WhatsApp template broadcast: pick the template, map its parameters, send; the customer who wrote today gets the free text', async ({ page, browser }) => {
  const fake = await startFake();
  try {
    // An admin connects the WhatsApp number; its templates are read on connect.
    await signIn(page, 'admin');
    await page.goto('/channels');
    await page.getByLabel('Kind').selectOption('whatsapp');
    await page.locator('#new-name').fill('E2E WhatsApp');
    await page.locator('#new-rate').fill('1000');
    await page.locator('#new-whatsapp-phone_number_id').fill(fake.phone_number_id);
    await page.locator('#new-whatsapp-waba_id').fill(fake.waba_id);
    await page.locator('#new-whatsapp-access_token').fill(fake.access_token);
    await page.locator('#new-whatsapp-app_secret').fill(fake.app_secret);
    await page.locator('#new-whatsapp-verify_token').fill('e2e-verify');
    await page.locator('#new-whatsapp-base_url').fill(fake.base_url);
    await page.getByRole('button', { name: 'Connect' }).click();
    await expect(page.getByRole('status')).toContainText('Connected “E2E WhatsApp”.');
    const channelRow = page.locator('table.channels-list tbody tr', { hasText: 'E2E WhatsApp' });
    const hook = (await channelRow.locator('code').first().textContent())!;
    const origin = new URL(page.url()).origin;
    await page.request.post(`${fake.control}/webhooks`, { data: { urls: [origin + new URL(hook).pathname] } });
    await expect(page.locator('body')).toContainText('spring_sale');

    // One VIP on WhatsApp writes to the number: their 24-hour window opens.
    const csv = await (await page.request.get('/customers/export.csv')).text();
    const [cols, ...records] = rows(csv);
    const vips = records
      .filter((c) => c.length === cols.length)
      .filter((c) => c[cols.indexOf('tags')].split(/[;,]\s*/).includes('VIP'))
      .filter((c) => c[cols.indexOf('whatsapp_id')] && c[cols.indexOf('opted_out')] === 'no');
    expect(vips.length).toBeGreaterThan(2);
    const writer = vips[0][cols.indexOf('whatsapp_id')].replace(/^\+/, '');
    await page.request.post(`${fake.control}/customer-writes`, { data: { wa_id: writer, text: 'Is the sale on yet?' } });
    expect(await (await page.request.get(`${fake.control}/settle`)).json()).toBe(true);

    // Staff compose it: the WhatsApp channel asks for an approved template.
    const staff = await (await browser.newContext()).newPage();
    await signIn(staff, 'staff');
    await staff.getByRole('link', { name: 'New Broadcast' }).click();
    await hydrated(staff);
    await staff.getByLabel('Name (only staff see it)').fill('Spring sale on WhatsApp');
    await staff.getByLabel('Message').fill('Thanks for writing, {{first_name}}! The sale starts on Friday.');
    await staff.getByRole('button', { name: 'Next' }).click();
    await expect(staff).toHaveURL(/step=2$/);
    await staff.getByLabel('Condition 1 value').selectOption({ label: 'VIP' });
    await staff.getByRole('button', { name: 'Next' }).click();
    await expect(staff).toHaveURL(/step=3$/);
    await staff.getByLabel('E2E WhatsApp (whatsapp)').check();
    await staff.getByRole('button', { name: 'Apply and count' }).click();
    await expect(staff.getByTestId('template-problems')).toContainText('Choose an approved WhatsApp template');
    const options = await staff.locator('#template option').allTextContents();
    expect(options).toContain('spring_sale (en_US, marketing)');
    expect(options.join()).not.toContain('old_sale');
    await staff.locator('#template').selectOption({ label: 'spring_sale (en_US, marketing)' });
    await staff.getByRole('button', { name: 'Apply template' }).click();
    // Its parameters: {{1}} the first name with a fallback, {{2}} a fixed text, the button's link.
    await staff.locator('#tp-fb-1').fill('');
    await staff.locator('#tp-src-2').selectOption('text');
    await staff.locator('#tp-val-2').fill('on Friday');
    await staff.locator('#tp-src-url-0').selectOption('text');
    await staff.locator('#tp-val-url-0').fill('spring');
    await staff.getByRole('button', { name: 'Apply template' }).click();
    await expect(staff.getByTestId('template-problems')).toContainText('fallback');
    await staff.locator('#tp-fb-1').fill('there');
    await staff.getByLabel(/Send the message's own text and files instead/).check();
    await staff.getByRole('button', { name: 'Apply template' }).click();
    await expect(staff.getByTestId('template-problems')).toHaveCount(0);
    const preview = staff.getByTestId('template-preview');
    await expect(preview).toContainText('Hi Ann, our spring sale starts on Friday.');
    await expect(preview).toContainText('[Shop → https://shop.example/s/spring]');
    await expect(staff.getByTestId('template-split')).toContainText(/1 of \d+ customers wrote within 24 hours and get the free text/);
    await staff.getByRole('button', { name: 'Send now' }).click();
    await hydrated(staff);
    await expect(row(staff, 'Spring sale on WhatsApp').locator('.status')).toHaveText('Sent', { timeout: 20_000 });

    // At the fake: one message each; the writer got the free text, everyone else the template.
    type Msg = { to: string; body: any; failed: number };
    const accepted: Msg[] = await (await page.request.get(`${fake.control}/accepted`)).json();
    expect(accepted.length).toBeGreaterThan(2);
    expect(new Set(accepted.map((m) => m.to)).size).toBe(accepted.length);
    const mine = accepted.find((m) => m.to === writer)!;
    expect(mine.body.type).toBe('text');
    expect(mine.body.text.body).toMatch(/^Thanks for writing, \S+! The sale starts on Friday\.$/);
    const others = accepted.filter((m) => m.to !== writer);
    for (const m of others) {
      expect(m.body.type).toBe('template');
      expect(m.body.template.name).toBe('spring_sale');
      const [body, button] = m.body.template.components;
      expect(body.parameters[1].text).toBe('on Friday');
      expect(button).toMatchObject({ type: 'button', sub_type: 'url', index: '0', parameters: [{ type: 'text', text: 'spring' }] });
    }
    expect(accepted.filter((m) => m.failed !== 0)).toEqual([]);

    // The same broadcast again: WhatsApp's marketing limit fails the second template to each
    // customer (131049), and the results say why, in plain words.
    await row(staff, 'Spring sale on WhatsApp').getByRole('link', { name: 'View' }).click();
    await hydrated(staff);
    const first = Number(/\/broadcasts\/(\d+)/.exec(staff.url())![1]);
    await expect(staff.locator('[data-stat="received"] .stat-value')).not.toHaveText('0 %', { timeout: 10_000 });
    await staff.goto(`/broadcasts/${first}/edit?step=3`);
    await staff.getByRole('button', { name: 'Copy into a new draft' }).click();
    await expect(staff).toHaveURL(/\/broadcasts\/\d+\/edit\?step=1$/);
    const second = Number(/\/broadcasts\/(\d+)/.exec(staff.url())![1]);
    expect(second).not.toBe(first);
    await staff.goto(`/broadcasts/${second}/edit?step=3`);
    await hydrated(staff);
    await staff.getByRole('button', { name: 'Send now' }).click();
    await hydrated(staff);
    await staff.goto(`/broadcasts/${second}`);
    await expect(async () => {
      await staff.reload();
      await expect(staff.locator('body')).toContainText('131049', { timeout: 1_000 });
    }).toPass({ timeout: 20_000 });
  } finally {
    fake.process.kill();
  }
});
