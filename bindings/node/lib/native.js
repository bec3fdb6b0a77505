'use strict';
/**
 * Loading the addon and the library; the dispatch functions the addon calls
 * (always on the JS thread, inside a loop iteration); running a library
 * operation as a Promise with AbortSignal and timeout.
 */
const fs = require('fs');
const path = require('path');
const { makeError, decorate, AbortError, timeoutError } = require('./errors');

const PKG_DIR = path.join(__dirname, '..');

/**
 * This package's version, which is the library's: ALOOP_VERSION_* of
 * include/asyncloop.h (tests/install/check_versions.py keeps package.json
 * equal to it). The library must have the same major and at least this minor.
 */
const PACKAGE_VERSION = require('../package.json').version;
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
    path.join(PKG_DIR, 'build', 'asyncloop.node'),
    path.join(PKG_DIR, 'prebuilds', `${process.platform}-${process.arch}`, 'asyncloop.node'),
    path.join(PKG_DIR, '..', '..', 'build', 'bindings', 'node', 'asyncloop.node'),
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

function callProtocol(o, name) {
  const p = o._protocol;
  if (p != null && typeof p[name] === 'function') p[name]();
}

/**
 * The functions the addon calls. Protocol methods are called with `this`
 * bound to the protocol; a missing method is skipped.
 */
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
  signal(loop, signum) {
    const h = loop._signals.get(signum);
    if (h !== undefined) h.fn(...h.args);
  },
  exception(loop, context) {
    loop.callExceptionHandler(context);
  },
  error: makeError,
  // A server accepted a connection: returns its Transport, or undefined to
  // refuse it (the library closes it and tells the exception handler).
  connection(server) {
    return server._accept();
  },
  connectionMade(o) {
    const p = o._protocol;
    if (p != null && typeof p.connectionMade === 'function') p.connectionMade(o);
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
  connectionLost(o, err) {
    o._connectionLost(err);
  },
  pauseWriting(o) {
    callProtocol(o, 'pauseWriting');
  },
  resumeWriting(o) {
    callProtocol(o, 'resumeWriting');
  },
  // Buffered protocols: the library reads into the Uint8Array (or Buffer)
  // getBuffer returns.
  getBuffer(t, sizehint) {
    const buf = t._protocol.getBuffer(sizehint);
    if (!(buf instanceof Uint8Array)) {
      throw new TypeError('getBuffer() must return a Buffer or Uint8Array');
    }
    return buf;
  },
  bufferUpdated(t, nbytes) {
    t._protocol.bufferUpdated(nbytes);
  },
  datagramReceived(d, data, host, port) {
    const p = d._protocol;
    if (p != null && typeof p.datagramReceived === 'function') {
      p.datagramReceived(data, toAddress(host, port));
    }
  },
  errorReceived(d, err) {
    const p = d._protocol;
    if (p != null && typeof p.errorReceived === 'function') p.errorReceived(err);
  },
  pipeDataReceived(proc, fd, data) {
    const p = proc._protocol;
    if (p != null && typeof p.pipeDataReceived === 'function') p.pipeDataReceived(fd, data);
  },
  pipeConnectionLost(proc, fd, err) {
    proc._pipeLost(fd);
    const p = proc._protocol;
    if (p != null && typeof p.pipeConnectionLost === 'function') p.pipeConnectionLost(fd, err);
  },
  processExited(proc) {
    proc._processExited();
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

/** The platform's socket constants (AF_*, SOCK_*, IPPROTO_*, AI_*, NI_*). */
const constants = Object.freeze({ ...lib.constants });

/**
 * An address as the library reports it, in the shape this binding uses:
 * {host, port} for IP; the path (a string; '@name' in the abstract
 * namespace, '' for an unnamed socket) for a Unix socket.
 */
function toAddress(host, port) {
  if (port === 0 && (host === '' || host[0] === '/' || host[0] === '@' || require('net').isIP(host) === 0)) {
    return host;
  }
  return { host, port };
}

/** A Unix socket path as the library takes it: Node's leading '\0' for the
 * abstract namespace becomes '@'. */
function unixPath(p) {
  if (typeof p !== 'string' && !(p instanceof URL)) throw new TypeError('path must be a string');
  if (p instanceof URL) p = require('url').fileURLToPath(p);
  return p.startsWith('\0') ? `@${p.slice(1)}` : p;
}

function checkFunction(fn, what) {
  if (typeof fn !== 'function') throw new TypeError(`${what} must be a function`);
}

function checkOptions(options, what = 'options') {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') throw new TypeError(`${what} must be an object`);
  return options;
}

/**
 * Runs a library operation as a Promise. start(cancellable) calls the addon
 * and returns its Promise. options.signal (an AbortSignal) and
 * options.timeout (milliseconds) cancel it: the Promise rejects with an
 * AbortError or an ETIMEDOUT Error and the library's operation is
 * cancelled; a result that arrives anyway goes to onLate (to release it).
 * Errors get syscall and address (decorate).
 */
function operation(options, start, syscall, where, onLate) {
  const signal = options ? options.signal : undefined;
  const timeout = options ? options.timeout : undefined;
  const fail = (e) => { throw decorate(e, syscall, where); };
  if (signal == null && timeout == null) {
    try {
      return start(false).then(undefined, fail);
    } catch (e) {
      return Promise.reject(e);
    }
  }
  if (signal != null && !(signal instanceof AbortSignal)) {
    return Promise.reject(new TypeError('options.signal must be an AbortSignal'));
  }
  if (timeout != null && !(typeof timeout === 'number' && timeout >= 0)) {
    return Promise.reject(new RangeError('options.timeout must be a number of milliseconds >= 0'));
  }
  if (signal != null && signal.aborted) {
    return Promise.reject(new AbortError(undefined, { cause: signal.reason }));
  }
  let p;
  try {
    p = start(true);
  } catch (e) {
    return Promise.reject(e);
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    let timer = null;
    const finish = () => {
      settled = true;
      if (timer !== null) clearTimeout(timer);
      if (signal != null) signal.removeEventListener('abort', onAbort);
    };
    const cancel = (err) => {
      if (settled) return;
      finish();
      native.opCancel(p);
      reject(err);
    };
    const onAbort = () => cancel(new AbortError(undefined, { cause: signal.reason }));
    if (signal != null) signal.addEventListener('abort', onAbort, { once: true });
    if (timeout != null) timer = setTimeout(() => cancel(timeoutError(timeout)), timeout);
    p.then((v) => {
      if (!settled) {
        finish();
        resolve(v);
      } else if (onLate) {
        onLate(v);
      }
    }, (e) => {
      if (settled) return;
      finish();
      reject(decorate(e, syscall, where));
    });
  });
}

module.exports = {
  native, lib, version, constants, dispatch, toAddress, unixPath, checkFunction, checkOptions,
  operation, makeError, decorate,
};
