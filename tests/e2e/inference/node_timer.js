// An event-loop service (node's own http module, nothing else): GET /slow/{n} waits 300-500 ms
// (setTimeout), then calls the backend's /down/{n} and answers with its body. A setInterval,
// started with the process, calls the backend's /timer/{k} every INTERVAL ms, outside any
// request: none of those calls belongs to a request this service is serving.
//
//     node node_timer.js PORT BACKEND_HOST:PORT [INTERVAL_MS]
'use strict';
const http = require('http');

const port = Number(process.argv[2]);
const [backendHost, backendPort] = process.argv[3].split(':');
const intervalMs = Number(process.argv[4] || 30);

function call(path, done) {
  const req = http.get({ host: backendHost, port: Number(backendPort), path }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => done(null, res.statusCode, Buffer.concat(chunks)));
  });
  req.setTimeout(10000, () => req.destroy(new Error('timeout')));
  req.on('error', (err) => done(err));
}

let k = 0;
setInterval(() => call(`/timer/${k++}`, () => {}), intervalMs);

http.createServer((req, res) => {
  const m = /^\/slow\/(\d+)$/.exec(req.url);
  if (!m) {
    res.writeHead(404, { 'Content-Length': '0' });
    res.end();
    return;
  }
  const n = Number(m[1]);
  setTimeout(() => {
    call(`/down/${n}`, (err, status, body) => {
      const out = err ? Buffer.from(`error ${err.message}\n`) : body;
      res.writeHead(err ? 502 : 200, { 'Content-Type': 'text/plain', 'Content-Length': String(out.length) });
      res.end(out);
    });
  }, 300 + ((n * 37) % 200));
}).listen(port, '127.0.0.1');
