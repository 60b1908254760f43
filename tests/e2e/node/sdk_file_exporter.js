// The ground truth of weft's end-to-end tests: the OpenTelemetry JS SDK's finished spans, kept
// in memory and written to a file, one JSON line each, when the provider shuts down (writing
// them as they end would put file I/O on the event loop between requests and skew the very
// timings being compared). Shared by service.js (HTTP/1) and grpc_service.js (gRPC).
'use strict';
const fs = require('fs');

const hrToNs = ([s, ns]) => (BigInt(s) * 1000000000n + BigInt(ns)).toString();

class FileSpanExporter {
  constructor(path) { this.path = path; this.lines = []; }
  export(spans, done) {
    for (const s of spans) {
      const ctx = s.spanContext();
      this.lines.push(JSON.stringify({
        service: process.env.OTEL_SERVICE_NAME,
        traceId: ctx.traceId,
        spanId: ctx.spanId,
        parentSpanId: s.parentSpanContext ? s.parentSpanContext.spanId : '',
        name: s.name,
        kind: s.kind,  // JS API numbering: SERVER=1, CLIENT=2
        startNs: hrToNs(s.startTime),
        endNs: hrToNs(s.endTime),
        status: s.status.code,  // UNSET=0, OK=1, ERROR=2
        attributes: s.attributes,
      }));
    }
    done({ code: 0 });
  }
  shutdown() {
    fs.writeFileSync(this.path, this.lines.map((l) => l + '\n').join(''), { flag: 'a' });
    return Promise.resolve();
  }
}

module.exports = { FileSpanExporter };
