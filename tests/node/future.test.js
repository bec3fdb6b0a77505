'use strict';
// Futures (asyncio.Future on the library's futures) and exception handlers.
const test = require('node:test');
const assert = require('node:assert/strict');
const { asyncloop, deferred, runNode, newLoop } = require('./_helpers');
const { Loop, Future } = asyncloop;

test('a future resolves awaiters and runs done-callbacks on the loop', async (tc) => {
  const loop = newLoop(tc);
  const fut = loop.createFuture();
  assert.ok(fut instanceof Future);
  assert.equal(fut.getLoop(), loop);
  assert.equal(fut.done(), false);
  assert.throws(() => fut.result(), { code: 'ERR_INVALID_STATE' });
  const calls = [];
  fut.addDoneCallback((f) => calls.push(['cb1', f.result()]));
  fut.addDoneCallback((f) => calls.push(['cb2', f === fut]));
  loop.callSoon(() => fut.setResult({ answer: 42 }));
  const value = await fut;
  assert.deepEqual(value, { answer: 42 });
  assert.equal(fut.done(), true);
  assert.equal(fut.cancelled(), false);
  assert.equal(fut.exception(), null);
  assert.deepEqual(calls, [['cb1', { answer: 42 }], ['cb2', true]]);
  assert.throws(() => fut.setResult(1), { code: 'ERR_INVALID_STATE' });
  loop.close();
});

test('done-callbacks never run synchronously, even on a done future', async (tc) => {
  const loop = newLoop(tc);
  const fut = loop.createFuture();
  fut.setResult('x');
  let ran = false;
  const done = deferred();
  fut.addDoneCallback(() => { ran = true; done.resolve(); });
  assert.equal(ran, false);
  await done.promise;
  assert.equal(ran, true);
  loop.close();
});

test('setException rejects awaiters with the same exception object', async (tc) => {
  const loop = newLoop(tc);
  const fut = loop.createFuture();
  const err = new Error('custom failure');
  fut.setException(err);
  await assert.rejects(async () => { await fut; }, (e) => e === err);
  assert.equal(fut.exception(), err);
  assert.throws(() => fut.result(), (e) => e === err);
  loop.close();
});

test('cancel: cancelled futures reject with ALOOP_ECANCELED', async (tc) => {
  const loop = newLoop(tc);
  const fut = loop.createFuture();
  assert.equal(fut.cancel('stop it'), true);
  assert.equal(fut.cancel(), false);
  assert.equal(fut.cancelled(), true);
  assert.equal(fut.done(), true);
  await assert.rejects(async () => { await fut; }, { code: 'ECANCELED', message: 'stop it' });
  assert.throws(() => fut.exception(), { code: 'ECANCELED' });
  const done = loop.createFuture();
  done.setResult(1);
  assert.equal(done.cancel(), false);
  loop.close();
});

test('removeDoneCallback removes every registration of a function', async (tc) => {
  const loop = newLoop(tc);
  const fut = loop.createFuture();
  const calls = [];
  const a = () => calls.push('a');
  const b = () => calls.push('b');
  fut.addDoneCallback(a);
  fut.addDoneCallback(b);
  fut.addDoneCallback(a);
  assert.equal(fut.removeDoneCallback(a), 2);
  assert.equal(fut.removeDoneCallback(a), 0);
  fut.setResult(null);
  await fut;
  await new Promise((r) => loop.callSoon(r));
  assert.deepEqual(calls, ['b']);
  loop.close();
});

test('closing the loop drops pending done-callbacks: never run, and released', async () => {
  // In a child with --expose-gc: the callback is scheduled (the future is
  // done) but not run when the loop closes; afterwards nothing holds it.
  const r = await runNode(`
    const { Loop } = require(process.env.ASYNCLOOP_BINDING);
    const loop = new Loop();
    let ran = false, released = false;
    const registry = new FinalizationRegistry(() => { released = true; });
    (() => {
      const fut = loop.createFuture();
      const cb = () => { ran = true; };
      registry.register(cb, 'cb');
      fut.addDoneCallback(cb);
      fut.setResult(1);
    })();
    loop.close();
    (async () => {
      for (let i = 0; i < 20 && !released; i++) {
        global.gc();
        await new Promise((r) => setTimeout(r, 10));
      }
      console.log(ran ? 'ran' : 'not run', released ? 'released' : 'held');
    })();
  `, { nodeArgs: ['--expose-gc'], timeoutMs: 20000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'not run released\n');
});

test('exception handler: set, get, call, default', () => {
  const loop = new Loop();
  assert.equal(loop.getExceptionHandler(), null);
  const seen = [];
  const handler = (l, ctx) => seen.push([l === loop, ctx.message]);
  loop.setExceptionHandler(handler);
  assert.equal(loop.getExceptionHandler(), handler);
  loop.callExceptionHandler({ message: 'something happened' });
  assert.deepEqual(seen, [[true, 'something happened']]);
  assert.throws(() => loop.setExceptionHandler(5), TypeError);
  loop.setExceptionHandler(null);
  assert.equal(loop.getExceptionHandler(), null);
  loop.close();
});

test('library errors reach the JS exception handler with an Error', async (t) => {
  // A protocol factory that returns no protocol refuses the connection; the
  // library closes it and reports it to the loop's exception handler.
  const loop = newLoop(t);
  const got = deferred();
  loop.setExceptionHandler((l, ctx) => got.resolve([l, ctx]));
  const server = await loop.createServer('127.0.0.1', 0, () => undefined);
  const lost = deferred();
  await loop.createConnection('127.0.0.1', server.port, { connectionLost: (e) => lost.resolve(e) });
  const [l, ctx] = await got.promise;
  assert.equal(l, loop);
  assert.equal(typeof ctx.message, 'string');
  assert.ok(ctx.message.length > 0);
  assert.ok(ctx.exception === null || (ctx.exception instanceof Error && typeof ctx.exception.code === 'string'));
  const err = await lost.promise; // the server closed the connection
  assert.ok(err === null || err.code === 'ECONNRESET');
  server.close();
  await server.waitClosed();
  loop.close();
});

test('the default exception handler prints the context to stderr', async () => {
  const r = await runNode(`
    const { Loop } = require(process.env.ASYNCLOOP_BINDING);
    const loop = new Loop();
    const e = new Error('refused'); e.errno = -111;
    loop.defaultExceptionHandler({ message: 'hello from the default handler', exception: e });
    loop.close();
  `);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /hello from the default handler/);
  assert.match(r.stderr, /ECONNREFUSED|connection refused/);
});

test('garbage-collected transports, servers and futures are released safely', async () => {
  const r = await runNode(`
    const { Loop } = require(process.env.ASYNCLOOP_BINDING);
    (async () => {
      const loop = new Loop();
      for (let round = 0; round < 3; round++) {
        let server = await loop.createServer('127.0.0.1', 0, () => ({
          connectionMade(t) { this.t = t; }, dataReceived(d) { this.t.write(d); },
        }));
        for (let i = 0; i < 20; i++) {
          await new Promise(async (resolve) => {
            const t = await loop.createConnection('127.0.0.1', server.port, {
              dataReceived() { t.close(); }, connectionLost: resolve,
            });
            t.write('x');
          });
          loop.createFuture().setResult(i);
        }
        server.close();
        await server.waitClosed();
        server = null;
        global.gc();
        await new Promise((r) => setImmediate(r));
        global.gc();
        await new Promise((r) => setTimeout(r, 10));
      }
      loop.close();
      console.log('ok');
    })();
  `, { nodeArgs: ['--expose-gc'], timeoutMs: 30000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'ok\n');
});
