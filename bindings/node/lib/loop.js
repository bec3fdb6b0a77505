'use strict';
/**
 * Loop (asyncio's event loop), its scheduled callbacks, fd watchers, signal
 * handlers and exception handler; the current loop. The networking,
 * subprocess and DNS methods are added by lib/net.js, lib/process.js and
 * lib/dns.js.
 *
 * Times are milliseconds, as Node's timers: loop.time() is the library's
 * monotonic clock (aloop_loop_time(), CLOCK_MONOTONIC) in milliseconds, the
 * same clock as process.hrtime() (loop.time() ~ Number(process.hrtime.bigint())
 * / 1e6); callLater(delay) takes milliseconds and callAt(when) a time on that
 * clock. The library counts seconds: the binding divides by 1000.
 */
const os = require('os');
const { native, makeError, checkFunction, checkOptions, operation } = require('./native');
const abi = require('../abi');

const { ALOOP_ENOLOOP } = abi.codes;

let nextId = 0;
const heldLoops = new Set();

function newId() {
  return ++nextId;
}

/** A signal as a number: 'SIGUSR1' or os.constants.signals.SIGUSR1. */
function signalNumber(sig) {
  if (typeof sig === 'string') {
    const n = os.constants.signals[sig];
    if (n === undefined) throw new TypeError(`unknown signal ${sig}`);
    return n;
  }
  if (!Number.isInteger(sig)) throw new TypeError('signal must be a name or a number');
  return sig;
}

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
    if (loop._callbacks.delete(this._id) && !loop._closed) this._cancelNative(loop);
    this._fn = null;
    this._args = null;
  }

  cancelled() {
    return this._cancelled;
  }

  _cancelNative(loop) {
    native.handleCancel(loop, this._h, false);
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

/**
 * A timer (asyncio.TimerHandle): a Handle with a deadline, and Node's
 * Timeout.ref()/unref(): an unref'd timer that is still to run does not keep
 * the process alive by itself (it runs if other work keeps it alive until
 * its deadline).
 */
class TimerHandle extends Handle {
  constructor(loop, id, fn, args) {
    super(loop, id, fn, args);
    this._when = 0;
    this._unref = false;
  }

  /** The deadline in loop time (milliseconds, see Loop.time()). */
  when() {
    return this._when;
  }

  /** This timer alone no longer keeps the process alive. Returns this. */
  unref() {
    if (!this._unref) {
      this._unref = true;
      this._count(1);
    }
    return this;
  }

  /** Undoes unref(). Returns this. */
  ref() {
    if (this._unref) {
      this._unref = false;
      this._count(-1);
    }
    return this;
  }

  /** False after unref() (until ref()). */
  hasRef() {
    return !this._unref;
  }

  // The addon counts the unref'd timers that are still to run.
  _count(delta) {
    const loop = this._loop;
    if (!loop._closed && loop._callbacks.get(this._id) === this) native.timerUnref(loop, delta);
  }

  _cancelNative(loop) {
    native.handleCancel(loop, this._h, true);
    if (this._unref) native.timerUnref(loop, -1);
  }

  _run() {
    if (this._unref) native.timerUnref(this._loop, -1);
    super._run();
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
    this._signals = new Map(); // signum -> {fn, args}
    this._exceptionHandler = null;
    this._closed = false;
    native.loopNew(this);
  }

  /** The loop's monotonic clock in milliseconds (asyncio's loop.time() x 1000). */
  time() {
    return native.loopTime(this) * 1000;
  }

  /** Runs fn(...args) on the next iteration, FIFO. */
  callSoon(fn, ...args) {
    checkFunction(fn, 'callback');
    const id = newId();
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
    const id = newId();
    const handle = new Handle(this, id, fn, args);
    handle._h = native.callSoonThreadsafe(this, id);
    this._callbacks.set(id, handle);
    return handle;
  }

  /** Runs fn(...args) after `delay` milliseconds; returns a TimerHandle. */
  callLater(delay, fn, ...args) {
    checkFunction(fn, 'callback');
    if (typeof delay !== 'number') throw new TypeError('delay must be a number of milliseconds');
    const id = newId();
    const handle = new TimerHandle(this, id, fn, args);
    handle._h = native.callLater(this, delay / 1000, id);
    handle._when = native.handleWhen(handle._h) * 1000;
    this._callbacks.set(id, handle);
    return handle;
  }

  /** Runs fn(...args) at loop time `when` (milliseconds, see time()). */
  callAt(when, fn, ...args) {
    checkFunction(fn, 'callback');
    if (typeof when !== 'number') throw new TypeError('when must be a number of milliseconds');
    const id = newId();
    const handle = new TimerHandle(this, id, fn, args);
    handle._h = native.callAt(this, when / 1000, id);
    handle._when = native.handleWhen(handle._h) * 1000;
    this._callbacks.set(id, handle);
    return handle;
  }

  /**
   * Closes the loop: drops pending callbacks. Throws ERR_ASYNCLOOP... EBUSY
   * while transports, servers, endpoints, subprocesses, fd watchers or
   * operations are alive. Idempotent.
   */
  close() {
    if (this._closed) return;
    native.loopClose(this);
    this._closed = true;
    native.loopHold(this, -(1 << 30)); // a closed loop waits for nothing
    this._callbacks.clear();
    this._readers.clear();
    this._writers.clear();
    this._signals.clear();
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

  /** Debug mode reports callbacks that run this long or longer (ms; 100). */
  get slowCallbackDuration() {
    return native.loopSlowCallbackDuration(this) * 1000;
  }

  set slowCallbackDuration(ms) {
    if (typeof ms !== 'number') throw new TypeError('slowCallbackDuration must be a number of ms');
    native.loopSlowCallbackDuration(this, ms / 1000);
  }

  createFuture() {
    return new (require('./future').Future)(this);
  }

  /**
   * The C handle of this loop (an aloop_loop_t * as a BigInt), for a native
   * library written against include/asyncloop.h (its own addon) that creates
   * transports, servers, timers and futures on this loop (docs/interop.md).
   * Its callbacks run on the JS thread, inside this loop's iterations. Throws
   * once the loop is closed.
   */
  get handle() {
    return native.loopHandle(this);
  }

  /**
   * Wraps a C future of this loop (an aloop_future_t * as a BigInt) that a
   * native library returned, as a Promise. Takes over the caller's reference
   * to the C future (freed once it is done; do not free it yourself); the
   * library keeps its own (see "References" in include/asyncloop.h). The
   * Promise resolves to the future's pointer-sized result (a BigInt, 0n for
   * NULL), or rejects with the library's error (code, errno, message). An
   * options.signal abort or options.timeout cancels the C future (the
   * library sees aloop_future_cancelled); a result that arrives anyway is
   * passed to options.release(result) to free what it points to.
   */
  wrapFuture(future, options) {
    options = checkOptions(options);
    if (typeof future !== 'bigint') throw new TypeError('future must be a BigInt (an aloop_future_t *)');
    const release = options.release;
    if (release !== undefined) checkFunction(release, 'options.release');
    return operation(options, (c) => native.wrapFuture(this, future, c), null, undefined,
      release);
  }

  /**
   * Tells the loop that native code changed its work outside its callbacks
   * (e.g. a library scheduled a timer or closed a transport without
   * returning a future), so that Node re-arms its wake-up (aloop_loop_wakeup's
   * concept; wrapFuture does it too).
   */
  wakeup() {
    native.loopWakeup(this);
  }

  /** Calls fn(...args) each iteration while fd is readable. */
  addReader(fd, fn, ...args) {
    checkFunction(fn, 'callback');
    native.addReader(this, fd, this._watchers(this._readers, fd, 1));
    this._readers.set(fd, { fn, args });
  }

  /** Returns true if a reader was removed. */
  removeReader(fd) {
    const n = this._watchers(this._readers, fd, -1);
    this._readers.delete(fd);
    return native.removeReader(this, fd, n);
  }

  /** Calls fn(...args) each iteration while fd is writable. */
  addWriter(fd, fn, ...args) {
    checkFunction(fn, 'callback');
    native.addWriter(this, fd, this._watchers(this._writers, fd, 1));
    this._writers.set(fd, { fn, args });
  }

  removeWriter(fd) {
    const n = this._watchers(this._writers, fd, -1);
    this._writers.delete(fd);
    return native.removeWriter(this, fd, n);
  }

  // How many fd watchers the loop has once `map` gains (+1) or loses (-1) fd.
  _watchers(map, fd, change) {
    const has = map.has(fd);
    const delta = change > 0 ? (has ? 0 : 1) : (has ? -1 : 0);
    return this._readers.size + this._writers.size + delta;
  }

  /**
   * Calls fn(...args) on the loop when the signal arrives (a name such as
   * 'SIGUSR2' or a number). While set, the signal's previous handler
   * (Node's, e.g. process.on('SIGINT')) does not run; removing the handler
   * gives the signal back to it. A handler does not keep the process alive.
   */
  addSignalHandler(sig, fn, ...args) {
    checkFunction(fn, 'callback');
    const n = signalNumber(sig);
    native.addSignalHandler(this, n);
    this._signals.set(n, { fn, args });
  }

  /** Returns true if a handler was removed. */
  removeSignalHandler(sig) {
    const n = signalNumber(sig);
    this._signals.delete(n);
    return native.removeSignalHandler(this, n);
  }

  /**
   * handler(loop, context) receives the loop's error reports (context:
   * {message, exception, transport?, server?}); null restores the default,
   * which prints to stderr.
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
  // other object of the loop.
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
  // Only in the checkout's build (src/bench.c), not in the npm package's.
  _wakeupFromThread(delayUs = 0) {
    if (typeof native.wakeupFromThread !== 'function') {
      return Promise.reject(new Error('this addon was built without the benchmark helpers ' +
                                      '(ASYNCLOOP_NODE_BENCH_HELPERS)'));
    }
    return new Promise((resolve) => {
      const id = newId();
      this._callbacks.set(id, {
        _run: (ns) => { heldLoops.delete(this); resolve(ns); },
      });
      heldLoops.add(this);
      native.wakeupFromThread(this, id, delayUs);
    });
  }
}

/** Copies the methods and accessors of a class onto Loop.prototype. */
function extendLoop(cls) {
  const props = Object.getOwnPropertyDescriptors(cls.prototype);
  delete props.constructor;
  Object.defineProperties(Loop.prototype, props);
}

// ---------------------------------------------------------------------------
// The current loop (asyncio's get_running_loop / get_event_loop /
// set_event_loop / new_event_loop)
// ---------------------------------------------------------------------------

let currentLoop = null;

/**
 * The loop whose callbacks are running (asyncio's get_running_loop): inside
 * a scheduled callback, a done-callback, a protocol method or a handler the
 * loop calls. Throws ERR_ASYNCLOOP_NO_LOOP elsewhere, including in Promise
 * jobs (code after `await`): Node runs those after the loop's iteration.
 */
function getRunningLoop() {
  const loop = native.runningLoop();
  if (loop === undefined) throw makeError(ALOOP_ENOLOOP, 'no running event loop');
  return loop;
}

/** The running loop, else this thread's current loop (created on first use). */
function getEventLoop() {
  const running = native.runningLoop();
  if (running !== undefined) return running;
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
  Loop, Handle, TimerHandle, extendLoop, newId, signalNumber,
  getRunningLoop, getEventLoop, setEventLoop, newEventLoop,
};
