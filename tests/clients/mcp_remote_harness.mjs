// Runs mcp-remote (its one-shot `client.js`) against Gatehouse and plays the browser when it
// asks for one. mcp-remote caches its registration and tokens in --config-dir, so a second
// run starts from what the first left.
//
//   node mcp_remote_harness.mjs <mcp url> --session <jwt> --config-dir <dir> --port <callback port>
//
// Prints one JSON line: exit code, tool names, how many sign-ins were needed.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { browse, deliver } from './browser.mjs';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { session: { type: 'string' }, 'config-dir': { type: 'string' }, port: { type: 'string' }, timeout: { type: 'string', default: '60000' } },
});
const require = createRequire(import.meta.url);
const dist = path.dirname(require.resolve('mcp-remote/dist/client.js'));

const child = spawn(process.execPath, [path.join(dist, 'client.js'), positionals[0], values.port, '--host', '127.0.0.1', '--transport', 'http-only'], {
  env: { ...process.env, MCP_REMOTE_CONFIG_DIR: values['config-dir'], BROWSER: 'false' },
  // client.js stops when its stdin ends: keep it open.
  stdio: ['pipe', 'pipe', 'pipe'],
});
let log = '';
let handled = 0;
let signIns = 0;
const failures = [];
const onOutput = async (chunk) => {
  log += chunk;
  const urls = [...log.matchAll(/Please authorize this client by visiting:\s*\n(\S+)/g)].map((m) => m[1]);
  for (const url of urls.slice(handled)) {
    handled++;
    try {
      const callback = await browse(url, values.session, (u) => u.port === values.port);
      await deliver(callback.href);
      signIns++;
    } catch (e) {
      failures.push(String(e));
    }
  }
};
child.stderr.on('data', onOutput);
child.stdout.on('data', onOutput);
const timer = setTimeout(() => child.kill(), Number(values.timeout));
child.on('exit', (code) => {
  clearTimeout(timer);
  child.stdin.destroy();
  const tools = log.match(/Tools: (\{[\s\S]*?\n\})/);
  console.log(
    JSON.stringify({
      exit: code,
      tools: tools ? JSON.parse(tools[1]).tools.map((t) => t.name) : null,
      signIns,
      failures,
      tail: log.slice(-1500),
    }),
  );
});
