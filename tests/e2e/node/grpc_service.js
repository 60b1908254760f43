// A gRPC service and its client on @grpc/grpc-js, both traced by the real OpenTelemetry JS SDK
// (@opentelemetry/instrumentation-grpc): the ground truth for weft's gRPC spans. No generated
// code: the service is defined by its paths, messages are raw bytes.
//   OTEL_SERVICE_NAME=grpc-server SPANS_FILE=/tmp/s.jsonl node grpc_service.js server
//     prints its port; writes its spans at SIGTERM or SIGINT
//   OTEL_SERVICE_NAME=grpc-client SPANS_FILE=/tmp/c.jsonl node grpc_service.js client PORT ROUNDS
//     makes ROUNDS rounds of calls, one at a time (unary, server-streaming, client-streaming,
//     bidirectional, failing), writes its spans and prints one JSON line of what each call got
'use strict';
const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { GrpcInstrumentation } = require('@opentelemetry/instrumentation-grpc');
const { FileSpanExporter } = require('./sdk_file_exporter');

const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new FileSpanExporter(process.env.SPANS_FILE))] });
provider.register();
registerInstrumentations({ instrumentations: [new GrpcInstrumentation()] });

const grpc = require('@grpc/grpc-js');  // after registration, so it is instrumented

const SERVICE = 'demo.Echo';
const bytes = (b) => b;
const method = (name, requestStream, responseStream) => ({
  path: `/${SERVICE}/${name}`, requestStream, responseStream,
  requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes,
});
const definition = {
  Say: method('Say', false, false),
  Items: method('Items', false, true),
  Collect: method('Collect', true, false),
  Chat: method('Chat', true, true),
  Fail: method('Fail', false, false),
};
const ITEMS = 3;

function serve() {
  const server = new grpc.Server();
  server.addService(definition, {
    Say: (call, done) => done(null, Buffer.concat([Buffer.from('hello '), call.request])),
    Items: (call) => {
      for (let i = 0; i < ITEMS; ++i) call.write(Buffer.from(`item ${i}`));
      call.end();
    },
    Collect: (call, done) => {
      let n = 0;
      call.on('data', () => { ++n; });
      call.on('end', () => done(null, Buffer.from(`got ${n}`)));
    },
    Chat: (call) => {
      call.on('data', (m) => call.write(m));
      call.on('end', () => call.end());
    },
    Fail: (call, done) => done({ code: grpc.status.NOT_FOUND, details: 'no such thing' }),
  });
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    console.log(port);
  });
  const stop = () => provider.shutdown().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

// Each call resolves with what it got: its messages and status code.
const unary = (client, name, payload) => new Promise((resolve) => {
  client[name](Buffer.from(payload), (err) => resolve({ method: name, messages: err ? 0 : 1, code: err ? err.code : 0 }));
});
const stream = (call, name, sends) => new Promise((resolve) => {
  let messages = 0;
  call.on('data', () => { ++messages; });
  call.on('status', (s) => resolve({ method: name, messages, code: s.code }));
  call.on('error', () => {});  // the status event reports it
  for (const m of sends) call.write(Buffer.from(m));
  if (call.end) call.end();
});
const collect = (client) => new Promise((resolve) => {
  const call = client.Collect((err) => resolve({ method: 'Collect', messages: err ? 0 : 1, code: err ? err.code : 0 }));
  for (const m of ['x', 'y']) call.write(Buffer.from(m));
  call.end();
});

async function callRounds(port, rounds) {
  const Client = grpc.makeGenericClientConstructor(definition, SERVICE);
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const results = [];
  for (let r = 0; r < rounds; ++r) {
    results.push(await unary(client, 'Say', `r${r}`));
    results.push(await stream(client.Items(Buffer.from('list')), 'Items', []));
    results.push(await collect(client));
    results.push(await stream(client.Chat(), 'Chat', ['a', 'b']));
    results.push(await unary(client, 'Fail', 'x'));
  }
  client.close();
  await provider.shutdown();
  console.log(JSON.stringify(results));
}

if (process.argv[2] === 'server') serve();
else callRounds(Number(process.argv[3]), Number(process.argv[4])).catch((e) => { console.error(e); process.exit(1); });
