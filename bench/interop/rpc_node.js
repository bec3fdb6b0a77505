'use strict';
// The interop workloads driven from Node (bench/run.py, suite interop):
// libaloop_rpc's server and client on asyncloop's Node Loop, through its
// addon examples/rpc/node.
//   node rpc_node.js call|lib SECONDS WARMUP INFLIGHT SIZE
// call: INFLIGHT async workers awaiting one call at a time (Loop.wrapFuture,
// reply checked); lib: rpc_client_bench batches. Prints {"value", "requests"}.
const path = require('path');
const asyncloop = require(process.env.ASYNCLOOP_BINDING
  || path.resolve(__dirname, '..', '..', 'bindings', 'node'));
const makeRpc = require('../../examples/rpc/node');

async function main() {
  const [mode, secs, warm, inflight, size] = process.argv.slice(2);
  const loop = new asyncloop.Loop();
  const rpc = makeRpc(loop);
  const payload = Buffer.alloc(Number(size));
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 131 + 7) & 0xff;
  const server = await rpc.startServer('127.0.0.1', 0);
  const client = await rpc.connect('127.0.0.1', server.port);
  const now = () => performance.now() / 1000;

  async function run(seconds) {
    const end = now() + seconds;
    if (mode === 'lib') {
      let k = 0;
      while (now() < end) {
        await client.bench(1000, Number(inflight), payload.length);
        k += 1000;
      }
      return k;
    }
    let k = 0;
    const worker = async () => {
      while (now() < end) {
        const r = await client.call(1, payload);
        if (!r.equals(payload)) throw new Error('a reply did not match');
        k++;
      }
    };
    await Promise.all(Array.from({ length: Number(inflight) }, worker));
    return k;
  }

  await run(Number(warm));
  const t0 = now();
  const k = await run(Number(secs));
  const el = now() - t0;
  client.close();
  server.close();
  console.log(JSON.stringify({ value: Math.round((k / el) * 10) / 10, requests: k }));
  setTimeout(() => process.exit(0), 20);
}

main().catch((e) => {
  console.log(JSON.stringify({ error: String(e) }));
  process.exit(1);
});
