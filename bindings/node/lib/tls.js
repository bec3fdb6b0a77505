'use strict';
/**
 * TLS settings in Node's words (tls.createSecureContext / tls.connect /
 * tls.createServer options), for the library's TLS (Go's crypto/tls; no
 * OpenSSL): SecureContext holds the options and makes the library's
 * configuration for each side (client, server) once.
 *
 * Options: cert, key (PEM strings or Buffers, or arrays of them, paired by
 * index; a key may be inside its cert), ca (PEM, or an array; replaces the
 * system's CAs unless defaultCa: true), ALPNProtocols (strings or
 * Buffers), servername (client: SNI and the name verified; default: the
 * host), rejectUnauthorized (client: verify the server, default true;
 * server: with requestCert, require a valid client certificate, default
 * true), requestCert (server), minVersion / maxVersion ('TLSv1.2',
 * 'TLSv1.3'), handshakeTimeout (ms; the library's default is 60000).
 */
const { native } = require('./native');

const VERSIONS = { 'TLSv1.2': 0x0303, 'TLSv1.3': 0x0304 };
const VERIFY_NONE = 0;
const VERIFY_REQUIRED = 1;
const VERIFY_OPTIONAL = 2;

function list(v) {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

function pem(v, what) {
  if (typeof v === 'string' || v instanceof Uint8Array) return v;
  throw new TypeError(`${what} must be a PEM string or Buffer`);
}

function version(v, what) {
  if (v === undefined || v === null) return 0;
  const n = VERSIONS[v];
  if (n === undefined) throw new RangeError(`${what} must be 'TLSv1.2' or 'TLSv1.3' (got ${v})`);
  return n;
}

/** The options the addon's tlsConfigNew takes, for one side. */
function nativeOptions(o, isServer) {
  const certs = list(o.cert).map((c) => pem(c, 'cert'));
  const keys = list(o.key).map((k) => pem(k, 'key'));
  if (keys.length > certs.length) throw new TypeError('every key needs its cert');
  let verify;
  if (isServer) {
    verify = !o.requestCert ? VERIFY_NONE : o.rejectUnauthorized === false ? VERIFY_OPTIONAL : VERIFY_REQUIRED;
  } else {
    verify = o.rejectUnauthorized === false ? VERIFY_NONE : VERIFY_REQUIRED;
  }
  const alpn = list(o.ALPNProtocols).map((p) => (typeof p === 'string' ? p : Buffer.from(p).toString('latin1')));
  if (o.handshakeTimeout !== undefined && !(typeof o.handshakeTimeout === 'number' && o.handshakeTimeout >= 0)) {
    throw new RangeError('handshakeTimeout must be a number of milliseconds');
  }
  return {
    certs: certs.map((cert, i) => ({ cert, key: keys[i] })),
    ca: list(o.ca).map((c) => pem(c, 'ca')),
    defaultCa: !!o.defaultCa,
    alpn: alpn.length ? alpn : undefined,
    verify,
    minVersion: version(o.minVersion, 'minVersion'),
    maxVersion: version(o.maxVersion, 'maxVersion'),
    handshakeTimeout: o.handshakeTimeout === undefined ? 0 : o.handshakeTimeout / 1000,
  };
}

/** TLS settings (Node's SecureContext; asyncio's SSLContext). */
class SecureContext {
  constructor(options = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    this.options = { ...options };
    this._configs = [null, null]; // client, server
    // Check the options now, as tls.createSecureContext does.
    nativeOptions(this.options, false);
  }

  // The library's configuration for a side, made on first use.
  _config(isServer) {
    const i = isServer ? 1 : 0;
    if (this._configs[i] === null) {
      const cfg = {};
      native.tlsConfigNew(cfg, isServer, nativeOptions(this.options, isServer));
      this._configs[i] = cfg;
    }
    return this._configs[i];
  }
}

const contexts = new WeakMap(); // options object -> SecureContext
let defaultContext = null;

/**
 * The SecureContext of a `tls` option: true (defaults), an options object
 * (its context is made once per object), or a SecureContext.
 */
function secureContextOf(tls) {
  if (tls instanceof SecureContext) return tls;
  if (tls === true) {
    if (defaultContext === null) defaultContext = new SecureContext({});
    return defaultContext;
  }
  if (tls === null || typeof tls !== 'object') {
    throw new TypeError('options.tls must be true, an options object or a SecureContext');
  }
  let ctx = contexts.get(tls);
  if (ctx === undefined) {
    ctx = tls.secureContext instanceof SecureContext ? tls.secureContext : new SecureContext(tls);
    contexts.set(tls, ctx);
  }
  return ctx;
}

/** tls.createSecureContext(options). */
function createSecureContext(options) {
  return new SecureContext(options);
}

module.exports = { SecureContext, createSecureContext, secureContextOf };
