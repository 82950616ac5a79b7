import { test as base, expect, Page } from '@playwright/test';

export const PASSWORD = 'herald-demo';
export const USERS = {
  admin: 'admin@herald.test',
  staff: 'staff@herald.test',
  manager: 'manager@herald.test',
} as const;
export type Role = keyof typeof USERS;

/** Every test fails if the page logs a console error or throws. */
export const test = base.extend<{ consoleErrors: string[] }>({
  consoleErrors: [
    async ({ page }, use) => {
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(String(e)));
      await use(errors);
      expect(errors, 'console errors').toEqual([]);
    },
    { auto: true },
  ],
});
export { expect };

/** Waits until the WASM bundle has hydrated the page (clicks before that are lost). */
export async function hydrated(page: Page) {
  await page.locator('body[data-hydrated="true"]').waitFor({ state: 'attached' });
}

export async function signIn(page: Page, role: Role, opts: { js?: boolean } = {}) {
  await page.goto('/login');
  if (opts.js !== false) await hydrated(page);
  await page.getByLabel('Email').fill(USERS[role]);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Broadcasts' })).toBeVisible();
  if (opts.js !== false) await hydrated(page);
}

export function row(page: Page, name: string) {
  return page.locator('table.broadcasts tbody tr', { has: page.getByText(name, { exact: true }) });
}

export async function names(page: Page): Promise<string[]> {
  return page.locator('table.broadcasts tbody td.name').allTextContents();
}

/** Each "Sort by" group, the status its rows show and its URL spelling. */
export const GROUPS = [
  ['Not processed first', 'Not processed', 'scheduled'],
  ['Sent first', 'Sent', 'sent'],
  ['Paused first', 'Paused', 'paused'],
  ['Sending first', 'Sending', 'status'],
] as const;

/** The list's statuses, with the chosen group's rows all before any other. */
export async function expectGroupFirst(page: Page, status: string) {
  const statuses = await page.locator('table.broadcasts tbody .status').allTextContents();
  expect(statuses[0]).toBe(status);
  const last = statuses.lastIndexOf(status);
  expect(statuses.slice(0, last + 1).every((s) => s === status), statuses.join(', ')).toBe(true);
}

