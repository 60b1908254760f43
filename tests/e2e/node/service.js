// One tier of an instrumented chain: an HTTP server that, when given a next hop, calls it for
// every request, traced by the real OpenTelemetry JS SDK. Every finished span is appended to
// SPANS_FILE as one JSON line: the ground truth weft's spans are compared with.
//   OTEL_SERVICE_NAME=front SPANS_FILE=/tmp/front.jsonl node service.js PORT [NEXT_HOST:PORT]
'use strict';
const fs = require('fs');
const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');

const hrToNs = ([s, ns]) => (BigInt(s) * 1000000000n + BigInt(ns)).toString();

class FileSpanExporter {
  constructor(path) { this.fd = fs.openSync(path, 'a'); }
  export(spans, done) {
    for (const s of spans) {
      const ctx = s.spanContext();
      fs.writeSync(this.fd, JSON.stringify({
        service: process.env.OTEL_SERVICE_NAME,
        traceId: ctx.traceId,
        spanId: ctx.spanId,
        parentSpanId: s.parentSpanContext ? s.parentSpanContext.spanId : '',
        name: s.name,
        kind: s.kind,  // JS API numbering: SERVER=1, CLIENT=2
        startNs: hrToNs(s.startTime),
        endNs: hrToNs(s.endTime),
        attributes: s.attributes,
      }) + '\n');
    }
    done({ code: 0 });
  }
  shutdown() { fs.closeSync(this.fd); return Promise.resolve(); }
}

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
