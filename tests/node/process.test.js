'use strict';
// Subprocesses with pipe transports, exit codes and signals; read/write
// pipes; Unix signal handlers. Real processes and signals only.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { asyncloop, deferred, newLoop, runNode } = require('./_helpers');
const { SubprocessTransport } = asyncloop;

/** A subprocess protocol that records everything. */
function recorder() {
  const out = { 1: [], 2: [] };
  const events = [];
  const exited = deferred();
  const lost = deferred();
  return {
    events,
    exited: exited.promise,
    lost: lost.promise,
    text: (fd) => Buffer.concat(out[fd]).toString(),
    connectionMade(t) { this.t = t; events.push('made'); },
    pipeDataReceived(fd, data) { assert.ok(Buffer.isBuffer(data)); out[fd].push(data); },
    pipeConnectionLost(fd, err) { events.push(`pipe${fd}:${err === null ? 'ok' : err.code}`); },
    processExited() { events.push('exited'); exited.resolve(this.t.getReturncode()); },
    connectionLost(err) { events.push('lost'); lost.resolve(err); },
  };
}

test('subprocessExec: stdout, stderr, the exit code, and asyncio\'s order of events', async (tc) => {
  const loop = newLoop(tc);
  const r = recorder();
  const proc = await loop.subprocessExec(r, '/bin/sh', ['-c', 'echo out; echo err >&2; exit 3']);
  assert.ok(proc instanceof SubprocessTransport);
  assert.ok(proc.pid > 0);
  assert.equal(proc.getPid(), proc.pid);
  assert.deepEqual(proc.spawnargs, ['/bin/sh', '-c', 'echo out; echo err >&2; exit 3']);
  assert.equal(await proc.wait(), 3);
  assert.equal(await r.exited, 3);
  assert.equal(await r.lost, null);
  assert.equal(r.text(1), 'out\n');
  assert.equal(r.text(2), 'err\n');
  assert.equal(r.events[0], 'made');
  assert.equal(r.events[r.events.length - 1], 'lost');
  assert.deepEqual(r.events.filter((e) => e.startsWith('pipe')).sort(), ['pipe0:ok', 'pipe1:ok', 'pipe2:ok']);
  assert.equal(proc.getReturncode(), 3);
  assert.equal(proc.exitCode, 3);
  assert.equal(proc.signalCode, null);
  assert.equal(proc.getExtraInfo('subprocess'), proc);
});

test('stdin is a pipe transport: write, writeEof; the child sees EOF', async (tc) => {
  const loop = newLoop(tc);
  const r = recorder();
  const proc = await loop.subprocessExec(r, 'cat');
  const stdin = proc.getPipeTransport(0);
  assert.equal(proc.getPipeTransport(0), stdin, 'one transport per fd');
  assert.equal(stdin.getProtocol(), r);
  assert.equal(stdin.canWriteEof(), true);
  stdin.write('hello ');
  stdin.writelines(['pipe', Buffer.from(' world')]);
  assert.equal(typeof stdin.getWriteBufferSize(), 'number');
  stdin.writeEof();
  assert.equal(await proc.wait(), 0);
  await r.lost;
  assert.equal(r.text(1), 'hello pipe world');
  assert.equal(proc.getPipeTransport(0), null, 'closed pipes have no transport');
  assert.throws(() => stdin.write('late'), { code: 'ERR_ASYNCLOOP_CLOSED' });
  assert.throws(() => proc.getPipeTransport(3), RangeError);
});

test('signals: terminate, kill and sendSignal give asyncio\'s negative codes and Node\'s signalCode', async (tc) => {
  const loop = newLoop(tc);
  for (const [how, sig, code] of [['terminate', 'SIGTERM', -15], ['kill', 'SIGKILL', -9], ['sendSignal', 'SIGUSR1', -10]]) {
    const r = recorder();
    const proc = await loop.subprocessExec(r, 'sleep', ['30'], { stdin: 'ignore' });
    if (how === 'sendSignal') proc.sendSignal(sig);
    else proc[how]();
    assert.equal(await proc.wait(), code);
    assert.equal(proc.exitCode, null);
    assert.equal(proc.signalCode, sig);
    await r.lost;
    proc.sendSignal('SIGTERM'); // after the exit: does nothing
  }
});

test('subprocessShell with env, cwd, stdio modes; close() kills a running child', async (tc) => {
  const loop = newLoop(tc);
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'aloop-sp-')));
  tc.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const r = recorder();
  const proc = await loop.subprocessShell(r, 'echo "$FOO" "$(pwd)"; echo e >&2',
    { env: { FOO: 'bar', PATH: process.env.PATH }, cwd: dir, stderr: 'stdout' });
  assert.equal(await proc.wait(), 0);
  await r.lost;
  assert.equal(r.text(1), `bar ${dir}\ne\n`);
  assert.equal(r.text(2), '');
  assert.equal(proc.getPipeTransport(2), null, 'stderr went to stdout');

  const quiet = recorder();
  const p2 = await loop.subprocessShell(quiet, 'echo hidden', { stdio: ['ignore', 'ignore', 'pipe'] });
  assert.equal(p2.getPipeTransport(0), null);
  assert.equal(await p2.wait(), 0);
  await quiet.lost;
  assert.equal(quiet.text(1), '');

  // An fd as stdout: the child writes into a file.
  const file = path.join(dir, 'out.txt');
  const fd = fs.openSync(file, 'w');
  const p3 = await loop.subprocessExec(recorder(), 'echo', ['to file'], { stdout: fd });
  fs.closeSync(fd);
  assert.equal(await p3.wait(), 0);
  assert.equal(fs.readFileSync(file, 'utf8'), 'to file\n');

  const r4 = recorder();
  const p4 = await loop.subprocessExec(r4, 'sleep', ['30']);
  p4.close();
  assert.equal(p4.isClosing(), true);
  assert.equal(await p4.wait(), -9);
  await r4.lost;
});

test('a program that cannot start rejects like child_process: ENOENT, syscall, path, spawnargs', async (tc) => {
  const loop = newLoop(tc);
  const err = await loop.subprocessExec({}, '/nonexistent/prog', ['a']).then(() => null, (e) => e);
  assert.equal(err.code, 'ENOENT');
  assert.equal(err.errno, -2);
  assert.equal(err.syscall, 'spawn /nonexistent/prog');
  assert.equal(err.path, '/nonexistent/prog');
  assert.deepEqual(err.spawnargs, ['/nonexistent/prog', 'a']);
  assert.equal(err.message, 'spawn /nonexistent/prog ENOENT');
  await assert.rejects(loop.subprocessExec({}, 'sh', { cwd: '/nonexistent' }), { code: 'ENOENT' });
  await assert.rejects(loop.subprocessExec({}, 'sh', { stdout: 'bogus' }), TypeError);
});

test('connectReadPipe / connectWritePipe over a FIFO: data, EOF, the end', async (tc) => {
  const loop = newLoop(tc);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aloop-fifo-'));
  tc.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const fifo = path.join(dir, 'f');
  execFileSync('mkfifo', [fifo]);
  const rfd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const wfd = fs.openSync(fifo, fs.constants.O_WRONLY);
  const chunks = [];
  const events = [];
  const lost = deferred();
  const reader = await loop.connectReadPipe({
    dataReceived(d) { chunks.push(d); },
    eofReceived() { events.push('eof'); },
    connectionLost(err) { events.push('lost'); lost.resolve(err); },
  }, rfd);
  const wlost = deferred();
  const writer = await loop.connectWritePipe({ connectionLost: wlost.resolve }, wfd);
  assert.equal(reader.getExtraInfo('pipe'), rfd);
  assert.equal(writer.isReading(), false);
  const big = Buffer.alloc(300000, 'x');
  writer.write('head:');
  writer.write(big);
  writer.close();
  assert.equal(await wlost.promise, null);
  assert.equal(await lost.promise, null);
  assert.deepEqual(events, ['eof', 'lost']);
  assert.equal(Buffer.concat(chunks).length, 5 + big.length);
  assert.throws(() => reader.write('x'), (e) => e.code === 'ERR_ASYNCLOOP_CLOSED' || e.code === 'EINVAL');
  // A regular file is refused, and stays the caller's.
  const file = fs.openSync(__filename, 'r');
  await assert.rejects(loop.connectReadPipe({}, file), { code: 'EINVAL' });
  fs.closeSync(file);
});

test('a subprocess\'s stdout as our read pipe, through a FileHandle', async (tc) => {
  const loop = newLoop(tc);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aloop-fifo-'));
  tc.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const fifo = path.join(dir, 'f');
  execFileSync('mkfifo', [fifo]);
  const fh = await fs.promises.open(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const got = [];
  const lost = deferred();
  await loop.connectReadPipe({ dataReceived: (d) => got.push(d), connectionLost: lost.resolve }, fh);
  const wfd = fs.openSync(fifo, fs.constants.O_WRONLY);
  const proc = await loop.subprocessExec(recorder(), 'echo', ['via fifo'], { stdout: wfd });
  fs.closeSync(wfd);
  await proc.wait();
  await lost.promise;
  assert.equal(Buffer.concat(got).toString(), 'via fifo\n');
});

test('addSignalHandler runs on the loop; removing it gives the signal back to Node', async () => {
  const r = await runNode(`
    const { Loop } = require(process.env.ASYNCLOOP_BINDING);
    const loop = new Loop();
    const seen = [];
    process.on('SIGUSR2', () => seen.push('node'));
    loop.addSignalHandler('SIGUSR2', (a, b) => {
      seen.push('loop:' + a + b + ':' + loop.isRunning());
      if (seen.length === 1) {
        console.log(loop.removeSignalHandler('SIGUSR2'), loop.removeSignalHandler(12));
        setTimeout(() => process.kill(process.pid, 'SIGUSR2'), 10);
      }
    }, 'x', 'y');
    setTimeout(() => process.kill(process.pid, 'SIGUSR2'), 10);
    setTimeout(() => { console.log(seen.join(',')); process.removeAllListeners('SIGUSR2'); }, 300);
  `);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'true false\nloop:xy:true,node\n');
});

test('a signal handler does not keep the process alive; bad signals are refused', async (tc) => {
  const loop = newLoop(tc);
  assert.throws(() => loop.addSignalHandler('SIGKILL', () => {}), { code: 'EINVAL' });
  assert.throws(() => loop.addSignalHandler('SIGNOPE', () => {}), TypeError);
  assert.throws(() => loop.addSignalHandler(2, 'no'), TypeError);
  assert.equal(loop.removeSignalHandler('SIGHUP'), false);
  const r = await runNode(`
    const { Loop } = require(process.env.ASYNCLOOP_BINDING);
    const loop = new Loop();
    loop.addSignalHandler('SIGUSR2', () => {});
    console.log('idle');
  `, { timeoutMs: 5000 });
  assert.equal(r.killed, false);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'idle\n');
});
