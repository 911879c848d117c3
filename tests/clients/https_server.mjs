// Serves one JSON document over https, for a client ID metadata document in tests.
//   node https_server.mjs --cert c.pem --key k.pem --path /client.json --file doc.json
// Prints {"port": N} once listening.
import fs from 'node:fs';
import https from 'node:https';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { cert: { type: 'string' }, key: { type: 'string' }, path: { type: 'string' }, file: { type: 'string' } } });
const server = https.createServer({ cert: fs.readFileSync(values.cert), key: fs.readFileSync(values.key) }, (req, res) => {
  if (req.url === values.path) {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
    res.end(fs.readFileSync(values.file));
  } else {
    res.writeHead(404);
    res.end();
  }
});
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
