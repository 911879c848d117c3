import { defineConfig } from '@playwright/test';
import { ports, urls } from './support/servers';

// Debian's Chromium, not a downloaded browser (these machines cannot download one). The flags
// keep it from reaching for the network, which is closed here.
const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const gatehouse = (mode: 'none' | 'basic' | 'oauth2') => ({
  command: `bash support/start-gatehouse.sh ${mode} ${ports[mode]} ${urls.oidc} ${urls.upstream}`,
  url: `${urls[mode]}/healthz`,
  reuseExistingServer: false,
  timeout: 60_000,
  stdout: (process.env.E2E_SERVER_LOGS ? 'pipe' : 'ignore') as 'pipe' | 'ignore',
  stderr: 'pipe' as const,
});

export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: true,
  workers: 2,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [['list']],
  outputDir: './test-results',
  use: {
    browserName: 'chromium',
    launchOptions: { executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: chromiumArgs },
    trace: 'retain-on-failure',
  },
  webServer: [
    {
      // --connections: also the OAuth provider that the Connections tests connect to, and
      // (--resource-prefix) the authorization server of the "hosted" upstream below.
      command: `node support/oidc-provider.mjs --port ${ports.oidc} --connections --resource-prefix http://127.0.0.1:`,
      url: `${urls.oidc}/.well-known/openid-configuration`,
      reuseExistingServer: false,
      timeout: 30_000,
      stdout: 'ignore',
      stderr: 'pipe',
    },
    {
      // An upstream MCP server on the Python SDK, a resource server of that provider: the
      // MCP Servers tests add it from the catalog (MCP_CATALOG, see start-gatehouse.sh).
      command: `../.venv/bin/python ../tests/upstreams/py_upstream.py --port ${ports.upstream} --issuer ${urls.oidc} --resource ${urls.oidc}/api --client-id gatehouse-connections --client-secret gatehouse-connections-secret`,
      url: `${urls.upstream}/mcp`,
      reuseExistingServer: false,
      timeout: 30_000,
      stdout: 'ignore',
      stderr: 'pipe',
    },
    {
      // The same upstream as a hosted server is: a resource server at its own URL, found
      // through its 401 and protected resource metadata (sign-in discovery).
      command: `../.venv/bin/python ../tests/upstreams/py_upstream.py --port ${ports.hosted} --issuer ${urls.oidc} --resource self --required-scopes read --client-id gatehouse-connections --client-secret gatehouse-connections-secret`,
      url: `${urls.hosted}/mcp`,
      reuseExistingServer: false,
      timeout: 30_000,
      stdout: 'ignore',
      stderr: 'pipe',
    },
    gatehouse('none'),
    gatehouse('basic'),
    gatehouse('oauth2'),
  ],
});
