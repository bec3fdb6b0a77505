'use strict';
// Process lifetime: Node exits by itself exactly when no asyncloop handle is
// live, like it does for its own timers and servers.
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('net');
const { runNode } = require('./_helpers');

const PRELUDE = `const { Loop } = require(process.env.ASYNCLOOP_BINDING);\n`;

test('a process whose server was closed exits by itself', async () => {
  const r = await runNode(PRELUDE + `
    (async () => {
      const loop = new Loop();
      const server = await loop.createServer('127.0.0.1', 0, () => ({}));
      console.log('listening', server.port);
      server.close();
      await server.waitClosed();
      console.log('closed');
    })();
  `, { timeoutMs: 10000 });
  assert.equal(r.killed, false, `did not exit by itself: ${r.stdout}`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^listening \d+\nclosed\n$/);
  assert.ok(r.ms < 5000, `took ${r.ms} ms`);
});

test('a process with an open server does not exit until the server closes', async () => {
  let port = null;
  let sawListening;
  const listening = new Promise((r) => { sawListening = r; });
  const child = runNode(PRELUDE + `
    (async () => {
      const loop = new Loop();
      const server = await loop.createServer('127.0.0.1', 0, () => ({
        connectionMade(t) { this.t = t; },
        dataReceived(d) {
          if (d.toString().includes('close')) {
            console.log('closing');
            server.close();
            this.t.close();
          }
        },
      }));
      console.log('listening ' + server.port);
    })();
  `, {
    timeoutMs: 15000,
    onStdout(line) {
      const m = /^listening (\d+)$/.exec(line);
      if (m) { port = Number(m[1]); sawListening(); }
    },
  });
  const early = await Promise.race([
    listening.then(() => new Promise((r) => setTimeout(() => r('still running'), 1500))),
    child.then((res) => `exited early: ${JSON.stringify(res)}`),
  ]);
  assert.equal(early, 'still running');
  // Ask it to close its server; then it must exit by itself.
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => {});
  sock.write('please close');
  const asked = Date.now();
  const r = await child;
  sock.destroy();
  assert.equal(r.killed, false, 'the child did not exit after closing its server');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /closing/);
  assert.ok(Date.now() - asked < 5000);
});

test('a pending timer keeps the process alive until it fires', async () => {
  const r = await runNode(PRELUDE + `
    const loop = new Loop();
    const t0 = Date.now();
    loop.callLater(300, () => console.log('fired after', Date.now() - t0 >= 290));
  `);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'fired after true\n');
});

test('a cancelled long timer does not keep the process alive', async () => {
  const r = await runNode(PRELUDE + `
    const loop = new Loop();
    const h = loop.callLater(3600000, () => console.log('never'));
    loop.callLater(50, () => { h.cancel(); console.log('cancelled'); });
  `, { timeoutMs: 10000 });
  assert.equal(r.killed, false);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'cancelled\n');
});

test('a timer cancelled before Node waits does not keep the process alive', async () => {
  const r = await runNode(PRELUDE + `
    const loop = new Loop();
    loop.callLater(3600000, () => console.log('never')).cancel();
    console.log('done');
  `, { timeoutMs: 10000 });
  assert.equal(r.killed, false);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'done\n');
});

test('a pending connection keeps the process alive until it fails', async () => {
  const r = await runNode(PRELUDE + `
    const loop = new Loop();
    loop.createConnection('127.0.0.1', 1, {}).catch((e) => console.log(e.code));
  `);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'ECONNREFUSED\n');
});

test('an idle loop, and a loop left unclosed, do not keep the process alive', async () => {
  const r = await runNode(PRELUDE + `
    const idle = new Loop();
    const used = new Loop();
    used.callSoon(() => console.log('ran'));
  `, { timeoutMs: 10000 });
  assert.equal(r.killed, false);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'ran\n');
});

test('an open connection keeps the process alive until the peer closes it', async () => {
  // The peer is a Node server in this process that ends the connection
  // after 500 ms; the child has nothing but the connection.
  const server = net.createServer((sock) => setTimeout(() => sock.end(), 500));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const r = await runNode(PRELUDE + `
    const loop = new Loop();
    const t0 = Date.now();
    loop.createConnection('127.0.0.1', ${server.address().port}, {
      eofReceived() { console.log('eof after', Date.now() - t0 >= 450); return false; },
    });
  `, { timeoutMs: 10000 });
  server.close();
  assert.equal(r.killed, false);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'eof after true\n');
});

test('many loops can live in one process, and garbage collection frees closed ones', async () => {
  const r = await runNode(PRELUDE + `
    (async () => {
      let n = 0;
      for (let i = 0; i < 200; i++) {
        const loop = new Loop();
        await new Promise((r) => loop.callSoon(r));
        n++;
        if (i % 2) loop.close();
      }
      if (global.gc) { global.gc(); await new Promise((r) => setImmediate(r)); global.gc(); }
      console.log('loops', n);
    })();
  `, { timeoutMs: 20000, nodeArgs: ['--expose-gc'] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'loops 200\n');
});

test('terminating a Worker releases its loop: servers close, ports are freed', async () => {
  const r = await runNode(`
    const { Worker } = require('worker_threads');
    const net = require('net');
    const w = new Worker(\`
      const { parentPort } = require('worker_threads');
      const { Loop } = require(process.env.ASYNCLOOP_BINDING);
      const loop = new Loop();
      loop.createServer('127.0.0.1', 0, () => ({})).then((s) => parentPort.postMessage(s.port));
    \`, { eval: true });
    w.on('message', async (port) => {
      await w.terminate();
      const probe = net.connect(port, '127.0.0.1');
      probe.on('connect', () => { console.log('still listening'); probe.destroy(); });
      probe.on('error', (e) => console.log(e.code));
    });
  `, { timeoutMs: 15000 });
  assert.equal(r.killed, false);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'ECONNREFUSED\n');
});

test('unref(): an unref\'d server or connection alone does not keep the process alive; ref() undoes it', async () => {
  const r = await runNode(PRELUDE + `
    (async () => {
      const loop = new Loop();
      const server = await loop.createServer('127.0.0.1', 0, () => ({}));
      console.log(server.unref() === server, server.hasRef());
      const t = await loop.createConnection('127.0.0.1', server.port, {});
      t.unref();
      // A timer keeps the process up for a while; then it is ref'd again and
      // the server keeps it up until it closes.
      setTimeout(() => {
        console.log('still here');
        server.ref();
        setTimeout(() => { t.close(); server.close(); console.log('closed'); }, 50);
      }, 50);
    })();
    process.on('exit', () => console.log('exit'));
  `, { timeoutMs: 10000 });
  assert.equal(r.killed, false);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'true false\nstill here\nclosed\nexit\n');

  const r2 = await runNode(PRELUDE + `
    (async () => {
      const loop = new Loop();
      const server = await loop.createServer('127.0.0.1', 0, () => ({}));
      const ep = await loop.createDatagramEndpoint({}, { localAddr: { host: '127.0.0.1', port: 0 } });
      const proc = await loop.subprocessExec({}, 'sleep', ['2']);
      server.unref();
      ep.unref();
      proc.unref();
      console.log('unrefd', proc.pid > 0);
    })();
    process.on('exit', () => console.log('exit'));
  `, { timeoutMs: 10000 });
  assert.equal(r2.killed, false, 'the process did not exit');
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(r2.stdout, 'unrefd true\nexit\n');
});

test('TimerHandle.unref(): an unref\'d timer alone does not keep the process alive', async () => {
  // Node's setTimeout(...).unref() beside it: both exit at once.
  const r = await runNode(PRELUDE + `
    const loop = new Loop();
    const t0 = Date.now();
    const h = loop.callLater(5000, () => console.log('fired'));
    console.log(h.unref() === h, h.hasRef(), typeof h.when());
    loop.callAt(loop.time() + 5000, () => console.log('fired too')).unref();
    setTimeout(() => console.log('node fired'), 5000).unref();
    process.on('exit', () => console.log('exit', Date.now() - t0 < 4000));
  `, { timeoutMs: 10000 });
  assert.equal(r.killed, false, 'the process did not exit');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'true false number\nexit true\n');
});

test('TimerHandle.unref(): it still fires while other work keeps the process alive; ref() undoes it', async () => {
  const r = await runNode(PRELUDE + `
    const loop = new Loop();
    const t0 = Date.now();
    // Fires: a ref'd library timer is due later.
    loop.callLater(100, () => console.log('unref fired', Date.now() - t0 >= 90)).unref();
    loop.callLater(300, () => console.log('ref fired'));
    // ref() after unref(): keeps the process alive again.
    const h = loop.callLater(400, () => console.log('re-refd fired'));
    h.unref();
    console.log(h.hasRef());
    h.ref();
    console.log(h.hasRef());
    // Cancelled unref'd and ref'd timers count no more.
    loop.callLater(100000, () => console.log('never')).unref().cancel();
    const c = loop.callLater(100000, () => console.log('never'));
    c.cancel();
    c.unref();
    c.ref();
    // The last one: unref'd, due after everything else; never runs.
    loop.callLater(3000, () => console.log('late unref fired')).unref();
    process.on('exit', () => console.log('exit', Date.now() - t0 < 2500));
  `, { timeoutMs: 10000 });
  assert.equal(r.killed, false, 'the process did not exit');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'false\ntrue\nunref fired true\nref fired\nre-refd fired\nexit true\n');
});

test('TimerHandle.unref(): a Loop nobody references is not collected while its unref\'d timer is to run', async () => {
  const r = await runNode(PRELUDE + `
    (() => {
      const loop = new Loop();
      loop.callLater(200, () => console.log('fired')).unref();
    })();
    for (let i = 0; i < 5; i++) setTimeout(() => global.gc(), 20 * i);
    setTimeout(() => console.log('done'), 400);
  `, { timeoutMs: 10000, nodeArgs: ['--expose-gc'] });
  assert.equal(r.killed, false, 'the process did not exit');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'fired\ndone\n');
});

test('TimerHandle.unref(): an unref\'d timer and an unref\'d server: neither keeps the process alive; a ref\'d connection does', async () => {
  const r = await runNode(PRELUDE + `
    (async () => {
      const loop = new Loop();
      const server = await loop.createServer('127.0.0.1', 0, () => ({}));
      server.unref();
      const t = await loop.createConnection('127.0.0.1', server.port, {});
      const t0 = Date.now();
      let n = 0;
      const tick = () => {
        if (++n < 3) return loop.callLater(30, tick).unref();
        t.close();
        loop.callLater(5000, () => console.log('late')).unref();
      };
      loop.callLater(30, tick).unref();
      process.on('exit', () => console.log('exit', n, Date.now() - t0 < 4000));
    })();
  `, { timeoutMs: 10000 });
  assert.equal(r.killed, false, 'the process did not exit');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'exit 3 true\n');
});

test('each worker_thread runs its own loop: echo over loopback inside Workers', async () => {
  const r = await runNode(`
    const { Worker } = require('worker_threads');
    const code = \`
      const { parentPort, workerData } = require('worker_threads');
      const { Loop } = require(process.env.ASYNCLOOP_BINDING);
      (async () => {
        const loop = new Loop();
        const server = await loop.createServer('127.0.0.1', 0, () => ({
          connectionMade(t) { this.t = t; }, dataReceived(d) { this.t.write(d); },
        }));
        const got = await new Promise(async (resolve) => {
          const t = await loop.createConnection('127.0.0.1', server.port, {
            dataReceived(d) { resolve(d.toString()); t.close(); },
          });
          t.write('worker ' + workerData);
        });
        server.close();
        await server.waitClosed();
        loop.close();
        parentPort.postMessage(got);
      })();
    \`;
    const results = [];
    for (let i = 0; i < 3; i++) {
      const w = new Worker(code, { eval: true, workerData: i });
      w.on('message', (m) => { results.push(m); if (results.length === 3) console.log(results.sort().join(',')); });
    }
  `, { timeoutMs: 20000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'worker 0,worker 1,worker 2\n');
});

// aloop_loop_close_force: a loop whose env ends (a Worker terminated, the
// process exiting) with objects still open on it is released at once, every
// object with it (the addon used to abort everything, retry aloop_loop_close
// and leak the loop when an fd watcher or another pending operation kept it
// busy). The loop's finalizer does the same for a loop the GC takes.
const FD_COUNT = `
  const fs = require('fs');
  const fdCount = () => fs.readdirSync('/proc/self/fd').length;
  const fifo = require('path').join(require('os').tmpdir(), 'aloop-lc-' + process.pid);
  require('child_process').execSync('mkfifo ' + fifo);
  const fifoFd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  process.on('exit', () => { try { fs.unlinkSync(fifo); } catch (e) {} });
`;

test('terminating a Worker whose loop has servers, connections, a watcher and a child releases all of it', async () => {
  const r = await runNode(FD_COUNT + `
    const { Worker } = require('worker_threads');
    const src = \`
      const { parentPort, workerData } = require('worker_threads');
      const { Loop } = require(process.env.ASYNCLOOP_BINDING);
      (async () => {
        const loop = new Loop();
        if (workerData.full) {
          loop.addReader(workerData.fd, () => {});
          const server = await loop.createServer('127.0.0.1', 0, () => ({}));
          const t = await loop.createConnection('127.0.0.1', server.port, {});
          t.write('pending');
          const proc = await loop.subprocessExec({}, 'sleep', ['30']);
          parentPort.postMessage({ port: server.port, pid: proc.pid });
        } else {
          parentPort.postMessage({});
        }
      })();
    \`;
    const run = (full) => new Promise((resolve) => {
      const w = new Worker(src, { eval: true, workerData: { full, fd: fifoFd } });
      w.on('message', async (m) => { await w.terminate(); resolve(m); });
    });
    (async () => {
      await run(false); // a first Worker: what Node itself keeps open
      const before = fdCount();
      const m = await run(true);
      await new Promise((r) => setTimeout(r, 200));
      let alive = true;
      for (let i = 0; i < 100 && alive; i++) {
        try { process.kill(m.pid, 0); await new Promise((r) => setTimeout(r, 20)); } catch (e) { alive = false; }
      }
      console.log('fds left', fdCount() - before, 'child alive', alive);
      const probe = require('net').connect(m.port, '127.0.0.1');
      probe.on('connect', () => { console.log('still listening'); probe.destroy(); });
      probe.on('error', (e) => console.log(e.code));
    })();
  `, { timeoutMs: 20000 });
  assert.equal(r.killed, false, 'the process did not exit');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'fds left 0 child alive false\nECONNREFUSED\n');
});
