'use strict';
/**
 * asyncloop for Node: the asyncio event loop (a Go engine behind a C ABI),
 * driven from Node's own event loop through a thin N-API addon.
 *
 *   const { Loop } = require('asyncloop');
 *   const loop = new Loop();
 *   loop.callLater(0.5, () => console.log('half a second later'));
 *
 * Names mirror asyncio in camelCase. Times are in seconds, on the loop's
 * monotonic clock (loop.time()), exactly as in asyncio. The JS thread never
 * blocks: the loop runs whenever its backend fd or its next timer fires in
 * Node's event loop, and it keeps the process alive only while it has live
 * work (ready callbacks, timers, transports, servers, fd watchers, pending
 * operations).
 *
 * Errors from the library are Error objects with .code = 'ALOOP_E...' (the
 * name from aloop_err_name) and .errno = the negative code.
 *
 * An exception thrown by a callback the loop runs (a scheduled callback, a
 * protocol method, a done-callback) is reported like one thrown by a
 * setTimeout callback: process 'uncaughtException', else the process exits.
 */
const fs = require('fs');
const path = require('path');

/**
 * This package's version, which is the library's: ALOOP_VERSION_* of
 * include/asyncloop.h (tests/install/check_versions.py keeps package.json
 * equal to it). The library must have the same major and at least this minor.
 */
const PACKAGE_VERSION = require('./package.json').version;
const [BINDING_MAJOR, BINDING_MINOR] = PACKAGE_VERSION.split('.').map(Number);

/**
 * The addon, in order: $ASYNCLOOP_NODE_ADDON; build/asyncloop.node (built
 * from the bundled sources at install, or by `npm run build`);
 * prebuilds/<platform>-<arch>/asyncloop.node (shipped in the npm package);
 * the checkout's CMake build, ../../build/bindings/node/asyncloop.node.
 */
function addonPath() {
  const env = process.env.ASYNCLOOP_NODE_ADDON;
  if (env) return path.resolve(env);
  const candidates = [
    path.join(__dirname, 'build', 'asyncloop.node'),
    path.join(__dirname, 'prebuilds', `${process.platform}-${process.arch}`, 'asyncloop.node'),
    path.join(__dirname, '..', '..', 'build', 'bindings', 'node', 'asyncloop.node'),
  ];
  const found = candidates.find((c) => fs.existsSync(c));
  if (found) return found;
  throw new Error(`asyncloop: no addon for ${process.platform}-${process.arch} (looked in ` +
                  `${candidates.join(', ')}); reinstall the package so that it builds one from ` +
                  'its bundled sources (needs Go, cmake and a C compiler), or set ASYNCLOOP_NODE_ADDON');
}

/**
 * The library: $ASYNCLOOP_LIBRARY; <build>/libasyncloop.so when the addon is
 * the checkout's CMake build (<build>/bindings/node/asyncloop.node); else the
 * bare name libasyncloop.so.MAJOR, which the addon's dlopen() looks up
 * through its RUNPATH $ORIGIN (the library beside the addon, as the package
 * ships and builds them) and then the system's library path.
 */
function libraryPath(addon) {
  const env = process.env.ASYNCLOOP_LIBRARY;
  if (env) return path.resolve(env);
  const built = path.join(path.dirname(addon), '..', '..', 'libasyncloop.so');
  if (path.basename(path.dirname(addon)) === 'node' && fs.existsSync(built)) return built;
  return `libasyncloop.so.${BINDING_MAJOR}`;
}

// ---------------------------------------------------------------------------
// Callbacks from the addon (always on the JS thread, inside a loop iteration)
// ---------------------------------------------------------------------------

const dispatch = {
  // A scheduled callback, a future's done-callback, or a thread wake-up.
  callback(loop, id, arg) {
    const entry = loop._callbacks.get(id);
    if (entry === undefined) return;
    loop._callbacks.delete(id);
    entry._run(arg);
  },
  fd(loop, fd, isWriter) {
    const w = (isWriter ? loop._writers : loop._readers).get(fd);
    if (w === undefined) return;
    if (w.args.length === 0) w.fn();
    else w.fn(...w.args);
  },
  // A server accepted a connection: returns its Transport, or undefined to
  // refuse it (the library closes it and tells the exception handler).
  connection(server) {
    const protocol = server._protocolFactory();
    if (protocol === null || (typeof protocol !== 'object' && typeof protocol !== 'function')) {
      return undefined;
    }
    return new Transport(server._loop, protocol);
  },
  connectionMade(t) {
    const p = t._protocol;
    if (p != null && typeof p.connectionMade === 'function') p.connectionMade(t);
  },
  dataReceived(t, data) {
    const p = t._protocol;
    if (p != null && typeof p.dataReceived === 'function') p.dataReceived(data);
  },
  eofReceived(t) {
    const p = t._protocol;
    if (p != null && typeof p.eofReceived === 'function') return !!p.eofReceived();
    return false;
  },
  connectionLost(t, err) {
    t._lost = true;
    const p = t._protocol;
    if (p != null && typeof p.connectionLost === 'function') p.connectionLost(err);
  },
  pauseWriting(t) {
    const p = t._protocol;
    if (p != null && typeof p.pauseWriting === 'function') p.pauseWriting();
  },
  resumeWriting(t) {
    const p = t._protocol;
    if (p != null && typeof p.resumeWriting === 'function') p.resumeWriting();
  },
  exception(loop, context) {
    const handler = loop._exceptionHandler;
    if (handler !== null) handler(loop, context);
    else loop.defaultExceptionHandler(context);
  },
};

const ADDON_PATH = addonPath();
const native = require(ADDON_PATH);
const lib = native.load(libraryPath(ADDON_PATH), dispatch);
if (lib.version >> 16 !== BINDING_MAJOR || ((lib.version >> 8) & 0xff) < BINDING_MINOR) {
  throw new Error(`asyncloop: ${lib.path} is libasyncloop ${lib.versionString}, but this package ` +
                  `is ${PACKAGE_VERSION} and needs libasyncloop ${BINDING_MAJOR}.x with x >= ` +
                  `${BINDING_MINOR} (set ASYNCLOOP_LIBRARY to a matching library, or reinstall)`);
}

/** The loaded library's version. */
const version = Object.freeze({
  major: lib.version >> 16,
  minor: (lib.version >> 8) & 0xff,
  patch: lib.version & 0xff,
  string: lib.versionString,
  library: lib.path,
  addon: ADDON_PATH,
});

const ALOOP_ECANCELED = -125;
const ALOOP_ESTATE = -3002;
const ALOOP_EUNKNOWN = -3999;

/** An Error as the addon makes them: .code = aloop_err_name(code), .errno. */
function makeError(code, message) {
  const err = new Error(message || native.strerror(code));
  err.code = native.errName(code);
  err.errno = code;
  return err;
}

function checkFunction(fn, what) {
  if (typeof fn !== 'function') throw new TypeError(`${what} must be a function`);
}

function optionFlag(v) {
  return v === undefined || v === null ? undefined : (v ? 1 : 0);
}

let nextId = 0;
const heldLoops = new Set();

// ---------------------------------------------------------------------------
// Handles
// ---------------------------------------------------------------------------

/** A scheduled callback (asyncio.Handle). */
class Handle {
  constructor(loop, id, fn, args) {
    this._loop = loop;
    this._id = id;
    this._fn = fn;
    this._args = args;
    this._h = undefined;
    this._cancelled = false;
  }

  /** Cancels the callback; no-op if it already ran or was cancelled. */
  cancel() {
    if (this._cancelled) return;
    this._cancelled = true;
    const loop = this._loop;
    if (loop._callbacks.delete(this._id) && !loop._closed) native.handleCancel(loop, this._h);
    this._fn = null;
    this._args = null;
  }

  cancelled() {
    return this._cancelled;
  }

  _run() {
    const fn = this._fn;
    const args = this._args;
    this._fn = null;
    this._args = null;
    if (args.length === 0) fn();
    else fn(...args);
  }
}

/** A timer (asyncio.TimerHandle): a Handle with a deadline. */
class TimerHandle extends Handle {
  /** The deadline in loop time (seconds, see Loop.time()). */
  when() {
    return this._when;
  }
}

// ---------------------------------------------------------------------------
// Future
// ---------------------------------------------------------------------------

/**
 * asyncio.Future on an asyncloop loop. Done-callbacks run on the loop (never
 * synchronously). A Future is awaitable (it has then()).
 */
class Future {
  constructor(loop) {
    this._loop = loop;
    this._result = undefined;
    this._exception = null;
    this._doneCallbacks = [];
    this._promise = null;
    native.futureNew(loop, this);
  }

  getLoop() {
    return this._loop;
  }

  done() {
    return native.futureState(this) !== 0;
  }

  cancelled() {
    return native.futureState(this) === 2;
  }

  /** Returns true if the future was cancelled, false if it was already done. */
  cancel(message) {
    const ok = native.futureCancel(this);
    if (ok) this._cancelMessage = message;
    return ok;
  }

  setResult(value) {
    native.futureSetResult(this);
    this._result = value;
  }

  setException(exception) {
    const code = exception != null && Number.isInteger(exception.errno) && exception.errno < 0
      ? exception.errno : ALOOP_EUNKNOWN;
    const message = exception != null && exception.message !== undefined
      ? String(exception.message) : String(exception);
    native.futureSetException(this, code, message);
    this._exception = exception;
  }

  _check() {
    const state = native.futureState(this);
    if (state === 0) throw makeError(ALOOP_ESTATE, 'Result is not set.');
    if (state === 2) throw makeError(ALOOP_ECANCELED, this._cancelMessage || 'the future was cancelled');
  }

  /** The result; throws the exception, a cancellation or ALOOP_ESTATE. */
  result() {
    this._check();
    if (this._exception !== null) throw this._exception;
    return this._result;
  }

  /** The exception (null if none); throws a cancellation or ALOOP_ESTATE. */
  exception() {
    this._check();
    return this._exception;
  }

  /** fn(future) runs on the loop once the future is done. */
  addDoneCallback(fn) {
    checkFunction(fn, 'callback');
    const id = ++nextId;
    const loop = this._loop;
    const entry = {
      _run: () => {
        const i = this._doneCallbacks.indexOf(entry);
        if (i >= 0) this._doneCallbacks.splice(i, 1);
        fn(this);
      },
      id,
      fn,
    };
    native.futureAddDoneCallback(this, id);
    loop._callbacks.set(id, entry);
    this._doneCallbacks.push(entry);
  }

  /** Removes every pending done-callback fn; returns how many. */
  removeDoneCallback(fn) {
    let count = 0;
    this._doneCallbacks = this._doneCallbacks.filter((entry) => {
      if (entry.fn !== fn) return true;
      count += native.futureRemoveDoneCallback(this, entry.id);
      this._loop._callbacks.delete(entry.id);
      return false;
    });
    return count;
  }

  then(onFulfilled, onRejected) {
    if (this._promise === null) {
      this._promise = new Promise((resolve, reject) => {
        this.addDoneCallback((f) => {
          try {
            resolve(f.result());
          } catch (e) {
            reject(e);
          }
        });
      });
    }
    return this._promise.then(onFulfilled, onRejected);
  }
}

// ---------------------------------------------------------------------------
// Transport and Server
// ---------------------------------------------------------------------------

/**
 * A TCP stream transport (asyncio.Transport). Its protocol is an object with
 * optional methods connectionMade(transport), dataReceived(data: Buffer),
 * eofReceived() -> boolean, connectionLost(err|null), pauseWriting(),
 * resumeWriting().
 */
class Transport {
  constructor(loop, protocol) {
    this._loop = loop;
    this._protocol = protocol;
    this._lost = false;
    this._peername = undefined;
    this._sockname = undefined;
  }

  getLoop() {
    return this._loop;
  }

  /** Writes a Buffer, TypedArray, DataView or string (UTF-8). Never blocks. */
  write(data) {
    if (typeof data === 'string') data = Buffer.from(data, 'utf8');
    native.transportWrite(this, data);
  }

  writelines(list) {
    for (const data of list) this.write(data);
  }

  /** Flushes the buffer, then closes; connectionLost(null) follows. */
  close() {
    native.transportClose(this);
  }

  /** Closes at once, dropping buffered data; connectionLost(null) follows. */
  abort() {
    native.transportAbort(this);
  }

  /** Shuts down the write side once the buffer is flushed. */
  writeEof() {
    native.transportWriteEof(this);
  }

  canWriteEof() {
    return native.transportCanWriteEof(this);
  }

  isClosing() {
    return native.transportIsClosing(this);
  }

  pauseReading() {
    native.transportPauseReading(this);
  }

  resumeReading() {
    native.transportResumeReading(this);
  }

  isReading() {
    return native.transportIsReading(this);
  }

  getWriteBufferSize() {
    return native.transportGetWriteBufferSize(this);
  }

  /**
   * asyncio's set_write_buffer_limits(high, low): with neither, the defaults
   * (64 KiB / 16 KiB); high alone sets low = high / 4; low alone sets
   * high = 4 * low. high 0 pauses writing on any buffered byte.
   */
  setWriteBufferLimits(high, low) {
    if (high === undefined) high = low === undefined ? lib.writeBufferHigh : 4 * low;
    if (low === undefined) low = Math.floor(high / 4);
    if (!(high >= low && low >= 0)) {
      throw new RangeError(`high (${high}) must be >= low (${low}) must be >= 0`);
    }
    native.transportSetWriteBufferLimits(this, high, low);
  }

  /** {low, high} in bytes. */
  getWriteBufferLimits() {
    return native.transportGetWriteBufferLimits(this);
  }

  getProtocol() {
    return this._protocol;
  }

  /** Routes the following callbacks to another protocol. */
  setProtocol(protocol) {
    this._protocol = protocol;
  }

  /** The peer address {host, port}, or null when unknown. */
  get peername() {
    if (this._peername === undefined) {
      try {
        this._peername = native.transportAddress(this, true);
      } catch {
        return null;
      }
    }
    return this._peername;
  }

  /** The local address {host, port}, or null when unknown. */
  get sockname() {
    if (this._sockname === undefined) {
      try {
        this._sockname = native.transportAddress(this, false);
      } catch {
        return null;
      }
    }
    return this._sockname;
  }

  /**
   * asyncio's get_extra_info: 'peername' and 'sockname' ({host, port}),
   * 'socket' (the fd number, owned by the transport).
   */
  getExtraInfo(name, defaultValue = null) {
    let value = null;
    if (name === 'peername') value = this.peername;
    else if (name === 'sockname') value = this.sockname;
    else if (name === 'socket') {
      try {
        value = native.transportFd(this);
      } catch {
        value = null;
      }
    }
    return value === null ? defaultValue : value;
  }
}

/** A listening TCP server (asyncio.Server). */
class Server {
  constructor(loop, protocolFactory) {
    this._loop = loop;
    this._protocolFactory = protocolFactory;
  }

  getLoop() {
    return this._loop;
  }

  /** Stops listening; accepted connections stay open. Idempotent. */
  close() {
    native.serverClose(this);
  }

  isServing() {
    return native.serverIsServing(this);
  }

  startServing() {
    native.serverStartServing(this);
  }

  /** Starts serving if needed; resolves once the server is closed. */
  serveForever() {
    if (!this.isServing()) this.startServing();
    return this.waitClosed();
  }

  /** Resolves once the server is closed and its connections are gone. */
  waitClosed() {
    return native.serverWaitClosed(this);
  }

  /** The listening sockets: [{fd, host, port}] (empty once closed). */
  get sockets() {
    return native.serverSockets(this);
  }

  /** The address {host, port} of the first listening socket, or null. */
  get sockname() {
    const s = this.sockets;
    return s.length === 0 ? null : { host: s[0].host, port: s[0].port };
  }

  /** The port of the first listening socket, or null. */
  get port() {
    const s = this.sockets;
    return s.length === 0 ? null : s[0].port;
  }
}

// ---------------------------------------------------------------------------
// Loop
// ---------------------------------------------------------------------------

/** An asyncio event loop run by libasyncloop, driven by Node's event loop. */
class Loop {
  constructor() {
    this._callbacks = new Map(); // id -> Handle | done-callback entry
    this._readers = new Map(); // fd -> {fn, args}
    this._writers = new Map();
    this._exceptionHandler = null;
    this._closed = false;
    native.loopNew(this);
  }

  /** The loop's monotonic clock in seconds (asyncio's loop.time()). */
  time() {
    return native.loopTime(this);
  }

  /** Runs fn(...args) on the next iteration, FIFO. */
  callSoon(fn, ...args) {
    checkFunction(fn, 'callback');
    const id = ++nextId;
    const handle = new Handle(this, id, fn, args);
    handle._h = native.callSoon(this, id);
    this._callbacks.set(id, handle);
    return handle;
  }

  /**
   * callSoon through the library's thread-safe queue (JS has one thread; this
   * exists for parity with asyncio and wakes the loop through its fd).
   */
  callSoonThreadsafe(fn, ...args) {
    checkFunction(fn, 'callback');
    const id = ++nextId;
    const handle = new Handle(this, id, fn, args);
    handle._h = native.callSoonThreadsafe(this, id);
    this._callbacks.set(id, handle);
    return handle;
  }

  /** Runs fn(...args) after `delay` seconds; returns a TimerHandle. */
  callLater(delay, fn, ...args) {
    checkFunction(fn, 'callback');
    const id = ++nextId;
    const handle = new TimerHandle(this, id, fn, args);
    handle._h = native.callLater(this, delay, id);
    handle._when = native.handleWhen(handle._h);
    this._callbacks.set(id, handle);
    return handle;
  }

  /** Runs fn(...args) at loop time `when` (seconds, see time()). */
  callAt(when, fn, ...args) {
    checkFunction(fn, 'callback');
    const id = ++nextId;
    const handle = new TimerHandle(this, id, fn, args);
    handle._h = native.callAt(this, when, id);
    handle._when = native.handleWhen(handle._h);
    this._callbacks.set(id, handle);
    return handle;
  }

  /**
   * Closes the loop: drops pending callbacks. Throws ALOOP_EBUSY while
   * transports, servers or fd watchers are alive. Idempotent.
   */
  close() {
    if (this._closed) return;
    native.loopClose(this);
    this._closed = true;
    this._callbacks.clear();
    this._readers.clear();
    this._writers.clear();
  }

  isClosed() {
    return this._closed;
  }

  /** True only while the loop is running an iteration (inside callbacks). */
  isRunning() {
    return native.loopIsRunning(this);
  }

  setDebug(enabled) {
    native.loopSetDebug(this, !!enabled);
  }

  getDebug() {
    return native.loopGetDebug(this);
  }

  createFuture() {
    return new Future(this);
  }

  /**
   * Listens on host:port (host null or '' = all interfaces, port 0 = any)
   * and resolves to a Server. protocolFactory() is called for every accepted
   * connection and returns its protocol.
   * options: {backlog, reuseAddress, reusePort, startServing}.
   */
  async createServer(host, port, protocolFactory, options = {}) {
    checkFunction(protocolFactory, 'protocolFactory');
    const server = new Server(this, protocolFactory);
    await native.createServer(this, server, host, port, options.backlog,
                              optionFlag(options.reuseAddress),
                              optionFlag(options.reusePort),
                              optionFlag(options.startServing));
    return server;
  }

  /**
   * Connects to host:port (host null: the loopback addresses; every resolved
   * address is tried) and resolves to the Transport once the protocol's
   * connectionMade has run. `protocol` is the protocol object, or a factory
   * function returning it. options: {localAddr: {host, port}}.
   */
  async createConnection(host, port, protocol, options = {}) {
    if (typeof protocol === 'function') protocol = protocol();
    const transport = new Transport(this, protocol);
    const local = options.localAddr;
    await native.createConnection(this, transport, host, port,
                                  local ? local.host : null, local ? local.port : 0);
    return transport;
  }

  /** Calls fn(...args) each iteration while fd is readable. */
  addReader(fd, fn, ...args) {
    checkFunction(fn, 'callback');
    native.addReader(this, fd);
    this._readers.set(fd, { fn, args });
  }

  /** Returns true if a reader was removed. */
  removeReader(fd) {
    this._readers.delete(fd);
    return native.removeReader(this, fd);
  }

  /** Calls fn(...args) each iteration while fd is writable. */
  addWriter(fd, fn, ...args) {
    checkFunction(fn, 'callback');
    native.addWriter(this, fd);
    this._writers.set(fd, { fn, args });
  }

  removeWriter(fd) {
    this._writers.delete(fd);
    return native.removeWriter(this, fd);
  }

  /**
   * handler(loop, context) receives the loop's error reports (context:
   * {message, exception, transport?}); null restores the default, which
   * prints to stderr.
   */
  setExceptionHandler(handler) {
    if (handler !== null) checkFunction(handler, 'handler');
    native.setExceptionHandler(this, handler !== null);
    this._exceptionHandler = handler;
  }

  getExceptionHandler() {
    return this._exceptionHandler;
  }

  callExceptionHandler(context) {
    if (this._exceptionHandler !== null) this._exceptionHandler(this, context);
    else this.defaultExceptionHandler(context);
  }

  defaultExceptionHandler(context) {
    const exc = context.exception;
    const code = exc != null && Number.isInteger(exc.errno) && exc.errno < 0 ? exc.errno : 0;
    native.defaultExceptionHandler(this, String(context.message ?? 'Unhandled error'), code);
    if (exc != null && code === 0) console.error(exc);
  }

  // Internal (tests clean up with it): closes every server and aborts every
  // transport of the loop.
  _abortAll() {
    native.loopAbortAll(this);
  }

  // Internal: one non-blocking iteration now (tests and benchmarks); the
  // first exception a callback threw is rethrown here.
  _runOnce() {
    native.loopRunNowait(this);
  }

  // Internal (bench): a native thread posts a callSoonThreadsafe after
  // delayUs; resolves with the ns from the post to the callback.
  // The loop is not "alive" for a post that is still to come from another
  // thread: hold it until the callback ran, or the GC may free it meanwhile.
  _wakeupFromThread(delayUs = 0) {
    return new Promise((resolve) => {
      const id = ++nextId;
      this._callbacks.set(id, {
        _run: (ns) => { heldLoops.delete(this); resolve(ns); },
      });
      heldLoops.add(this);
      native.wakeupFromThread(this, id, delayUs);
    });
  }
}

// ---------------------------------------------------------------------------
// The current loop (asyncio's get_event_loop / set_event_loop / new_event_loop)
// ---------------------------------------------------------------------------

let currentLoop = null;

/** This thread's current loop, created on first use. */
function getEventLoop() {
  if (currentLoop === null) currentLoop = new Loop();
  return currentLoop;
}

function setEventLoop(loop) {
  if (loop !== null && !(loop instanceof Loop)) throw new TypeError('loop must be a Loop or null');
  currentLoop = loop;
}

function newEventLoop() {
  return new Loop();
}

module.exports = {
  Loop,
  Handle,
  TimerHandle,
  Future,
  Transport,
  Server,
  getEventLoop,
  setEventLoop,
  newEventLoop,
  errName: (code) => native.errName(code),
  strerror: (code) => native.strerror(code),
  version,
};
