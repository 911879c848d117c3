// A TLS front for a test: https on 127.0.0.1:PORT, every request passed on as it came (Host
// included) to an http origin, answers streamed back. What a reverse proxy terminating TLS
// does for an instance with an https PUBLIC_URL.
//   node tls_front.mjs --cert c.pem --key k.pem --port N --to http://127.0.0.1:M
// Prints {"port": N} once listening.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { cert: { type: 'string' }, key: { type: 'string' }, port: { type: 'string', default: '0' }, to: { type: 'string' } },
});
const origin = new URL(values.to);
const server = https.createServer({ cert: fs.readFileSync(values.cert), key: fs.readFileSync(values.key) }, (req, res) => {
  const upstream = http.request(
    { host: origin.hostname, port: origin.port, method: req.method, path: req.url, headers: { ...req.headers, 'x-forwarded-proto': 'https' } },
    (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', (e) => {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`tls_front: ${e.message}`);
  });
  req.pipe(upstream);
});
server.listen(Number(values.port), '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
