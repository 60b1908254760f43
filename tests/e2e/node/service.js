// One tier of an instrumented chain: an HTTP server that, when given a next hop, calls it for
// every request, traced by the real OpenTelemetry JS SDK. Finished spans are kept in memory
// and written to SPANS_FILE, one JSON line each, when the process gets SIGTERM or SIGINT: the
// ground truth weft's spans are compared with. (Writing them as they end would put file I/O
// on the event loop between requests and skew the very timings being compared.)
//   OTEL_SERVICE_NAME=front SPANS_FILE=/tmp/front.jsonl node service.js PORT [NEXT_HOST:PORT]
'use strict';
const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { FileSpanExporter } = require('./sdk_file_exporter');

const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new FileSpanExporter(process.env.SPANS_FILE))] });
provider.register();
registerInstrumentations({ instrumentations: [new HttpInstrumentation()] });

const http = require('http');  // after registration, so it is instrumented
const [port, next] = [Number(process.argv[2]), process.argv[3]];
const agent = new http.Agent({ keepAlive: true });

http.createServer((req, res) => {
  const reply = (body) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  req.resume();
  req.on('end', () => {
    if (!next) return reply(`${process.env.OTEL_SERVICE_NAME}\n`);
    const [host, nextPort] = next.split(':');
    http.get({ host, port: Number(nextPort), path: `/from-${process.env.OTEL_SERVICE_NAME}${req.url}`, agent }, (r) => {
      let body = '';
      r.on('data', (d) => { body += d; });
      r.on('end', () => reply(`${process.env.OTEL_SERVICE_NAME}\n${body}`));
    }).on('error', (e) => { res.writeHead(502); res.end(String(e)); });
  });
}).listen(port, '127.0.0.1', () => console.log(`listening ${port}`));

const stop = () => provider.shutdown().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
