import type { CDPSession, Page } from '@playwright/test';
import { test, expect, hydrated } from '../support/fixtures';
import { urls } from '../support/servers';

// The first page's bundle (WASM, JavaScript, CSS): compressed, named by its fingerprint, kept
// by the browser, and small. Counted from what Chromium itself reports for each request.

const BUDGET = 400_000; // bytes on the wire, headers included

type Fetched = { url: string; bytes: number; fromCache: boolean; headers: Record<string, string> };

/** Records every bundle request of the page as Chromium's network layer sees it. */
async function watch(page: Page): Promise<{ cdp: CDPSession; fetched: Map<string, Fetched> }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  const fetched = new Map<string, Fetched>();
  cdp.on('Network.responseReceived', (e) => {
    const path = new URL(e.response.url).pathname;
    if (!path.startsWith('/pkg/') && !path.startsWith('/assets/')) return;
    const headers = Object.fromEntries(Object.entries(e.response.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
    fetched.set(e.requestId, {
      url: e.response.url,
      bytes: 0,
      fromCache: Boolean(e.response.fromDiskCache || e.response.fromPrefetchCache || e.response.fromServiceWorker),
      headers,
    });
  });
  cdp.on('Network.requestServedFromCache', (e) => {
    const f = fetched.get(e.requestId);
    if (f) f.fromCache = true;
  });
  cdp.on('Network.loadingFinished', (e) => {
    const f = fetched.get(e.requestId);
    if (f) f.bytes = e.encodedDataLength;
  });
  return { cdp, fetched };
}

test('the first page loads a compressed, fingerprinted, cached bundle within budget', async ({ page, context }) => {
  const { fetched } = await watch(page);
  const document = await page.goto(`${urls.basic}/login`);
  await hydrated(page);
  await page.waitForLoadState('networkidle');

  // The page itself is never kept stale.
  expect(document!.headers()['cache-control']).toMatch(/no-cache|no-store/);

  // The app's frame (WASM and its JavaScript), the stylesheet, and with `--split` the chunks
  // of this page and their loader.
  const files = [...fetched.values()];
  const kinds = new Set(files.map((f) => new URL(f.url).pathname.split('.').pop()));
  expect([...kinds].filter((k) => ['css', 'js', 'wasm'].includes(k!)).sort()).toEqual(['css', 'js', 'wasm']);
  for (const f of files) {
    expect(new URL(f.url).pathname, 'named by the fingerprint').toMatch(/^\/assets\/[0-9a-f]{16}\/pkg\//);
    expect(f.headers['cache-control'], f.url).toBe('public, max-age=31536000, immutable');
    if (f.bytes > 1_000) expect(['br', 'gzip'], `${f.url} is compressed`).toContain(f.headers['content-encoding']);
    expect(f.fromCache).toBe(false);
  }
  const total = files.reduce((sum, f) => sum + f.bytes, 0);
  console.log(`first page bundle: ${files.map((f) => `${new URL(f.url).pathname.split('/').pop()} ${f.bytes} B (${f.headers['content-encoding']})`).join(', ')}; ${total} B in all`);
  expect(total, 'WASM + JS + CSS on the wire').toBeLessThanOrEqual(BUDGET);

  // A repeat visit in the same browser: none of them comes over the network again.
  const again = await context.newPage();
  const second = await watch(again);
  await again.goto(`${urls.basic}/login`);
  await hydrated(again);
  await again.waitForLoadState('networkidle');
  const downloaded = [...second.fetched.values()].filter((f) => !f.fromCache);
  expect(downloaded.map((f) => f.url), 'downloaded again').toEqual([]);
  await again.close();
});

test('a file of another build is not found, and an unversioned one is revalidated', async ({ request }) => {
  const stale = await request.get(`${urls.basic}/assets/0123456789abcdef/pkg/gatehouse.js`);
  expect(stale.status()).toBe(404);
  const plain = await request.get(`${urls.basic}/pkg/gatehouse.css`);
  expect(plain.status()).toBe(200);
  expect(plain.headers()['cache-control']).toBe('no-cache');
});
