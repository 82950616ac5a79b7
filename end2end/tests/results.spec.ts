// Reads only: the demo broadcast in progress keeps sending at one message a second.
import AxeBuilder from '@axe-core/playwright';
import { test, expect, signIn, row, hydrated } from './fixtures';

test('the results page shows the numbers rising live while a broadcast sends', async ({ page }) => {
  await signIn(page, 'manager');
  await row(page, 'Order delay apology')
    .getByRole('link', { name: 'View' })
    .click();
  await expect(page).toHaveURL(/\/broadcasts\/\d+$/);
  await hydrated(page);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Order delay apology');
  const sent = page.locator('[data-stat="sent"] .stat-value');
  const value = async () => parseInt(((await sent.textContent()) ?? '0').replace(/,/g, ''), 10);
  const first = await value();
  await expect.poll(value, { timeout: 15_000 }).toBeGreaterThan(first);
  // The sandbox reports deliveries and reads, so every rate is measured.
  for (const stat of ['received', 'read', 'reply']) {
    await expect(page.locator(`[data-stat="${stat}"] .stat-value`)).toHaveText(/%$/);
  }
  // While it sends, the rates are of what was sent so far, not of the whole audience.
  const snapshot = () =>
    page.evaluate(() => {
      // The funnel's steps carry the counts: Audience, Sent, Delivered, …
      const texts = (cls: string) =>
        [...document.querySelectorAll(`svg.funnel text.${cls}`)].map((t) => t.textContent ?? '');
      const labels = texts('funnel-label');
      const values = texts('funnel-value').map((v) => Number(v.replace(/[^0-9]/g, '')));
      const count = (label: string) => values[labels.indexOf(label)];
      const card = (stat: string, part: string) =>
        document.querySelector(`[data-stat="${stat}"] .${part}`)?.textContent ?? '';
      return {
        audience: count('Audience'),
        sent: count('Sent'),
        received: count('Delivered'),
        rate: parseFloat(card('received', 'stat-value')),
        note: card('received', 'stat-note'),
      };
    });
  await expect.poll(async () => (await snapshot()).received, { timeout: 15_000 }).toBeGreaterThan(0);
  const s = await snapshot();
  expect(s.sent).toBeLessThan(s.audience);
  expect(Math.abs(s.rate - (100 * s.received) / s.sent)).toBeLessThan(0.06);
  expect(s.rate).toBeGreaterThan((100 * s.received) / s.audience + 0.1);
  expect(s.note).toContain('Of those sent.');
  expect(s.note).toContain('So far.');
  await expect(page.getByRole('img', { name: 'Funnel: audience to replies' })).toBeVisible();
  await expect(page.getByRole('img', { name: 'Sends, deliveries, reads and replies over time' })).toBeVisible();
  await expect(page.locator('table.channels-results tbody tr')).toHaveCount(1);
  const result = await new AxeBuilder({ page }).analyze();
  const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(serious.map((v) => v.id)).toEqual([]);
});
