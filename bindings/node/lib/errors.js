'use strict';
/**
 * Errors in Node's idiom. Every error of the library is an Error whose
 * `code` is Node's ('ECONNREFUSED', not 'ALOOP_ECONNREFUSED': the POSIX name
 * for an errno, Node's code for the same condition or ERR_ASYNCLOOP_* for the
 * library's own, see abi.js), `errno` the negative code (as Node's system
 * errors: -111), `aloopCode` the library's name ('ALOOP_ECONNREFUSED'), and,
 * where an operation failed, `syscall`, `address`, `port` (or `path`,
 * `hostname`) with Node's message: 'connect ECONNREFUSED 127.0.0.1:8080'.
 * The library's own message, when it says more, is `detail`.
 */
const util = require('util');
const abi = require('../abi');

/** Node's code for a TLS failure, from the library's message. */
function refineTls(code, detail) {
  if (!detail) return code;
  if (code === 'ERR_ASYNCLOOP_CERT') {
    if (/is valid for|not valid for any names|doesn't contain any IP SANs|is not valid for/.test(detail)) {
      return 'ERR_TLS_CERT_ALTNAME_INVALID';
    }
    if (/has expired/.test(detail)) return 'CERT_HAS_EXPIRED';
    if (/not yet valid/.test(detail)) return 'CERT_NOT_YET_VALID';
    if (/unknown authority/.test(detail)) return 'UNABLE_TO_VERIFY_LEAF_SIGNATURE';
  } else if (code === 'ENOTFOUND' && /temporary failure/i.test(detail)) {
    return 'EAI_AGAIN';
  }
  return code;
}

/** The Error for a library code (and its detailed message, if any). */
function makeError(errno, detail) {
  const entry = abi.errors.get(errno);
  let code;
  let aloopCode;
  let description;
  if (entry !== undefined) {
    [aloopCode, description, code] = entry;
  } else {
    // An errno the library passed through (the socket helpers' calls).
    try {
      code = util.getSystemErrorName(errno);
    } catch {
      code = 'UNKNOWN';
    }
    aloopCode = 'ALOOP_EUNKNOWN';
    description = code;
  }
  code = refineTls(code, detail);
  const err = new Error(detail || description);
  err.code = code;
  err.errno = errno;
  err.aloopCode = aloopCode;
  if (detail && detail !== description) err.detail = detail;
  return err;
}

/**
 * Adds what Node's system errors carry to an Error of the library:
 * syscall, and address/port (or path, or hostname), with Node's message
 * '<syscall> <code> <address>:<port>'. Other values pass through.
 */
function decorate(err, syscall, where = {}) {
  if (err === null || typeof err !== 'object' || typeof err.errno !== 'number') return err;
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') {
    err.syscall = syscall === 'getnameinfo' ? syscall : 'getaddrinfo';
    const host = where.hostname ?? where.address;
    if (host !== undefined && host !== null) err.hostname = host;
    err.message = `${err.syscall} ${err.code}${host ? ` ${host}` : ''}`;
    return err;
  }
  // Not a system call's failure, or the caller decorates it itself.
  if (!syscall || err.errno <= -3000 || err.code === 'ECANCELED') return err;
  err.syscall = syscall;
  let at = '';
  if (where.path !== undefined) {
    err.path = where.path;
    at = ` ${where.path}`;
  } else if (where.address !== undefined && where.address !== null) {
    err.address = where.address;
    at = ` ${where.address}`;
    if (where.port !== undefined && where.port !== null) {
      err.port = where.port;
      at += `:${where.port}`;
    }
  }
  err.message = `${syscall} ${err.code}${at}`;
  return err;
}

/** Node's AbortError (err.name 'AbortError', err.code 'ABORT_ERR'). */
class AbortError extends Error {
  constructor(message = 'The operation was aborted', options = undefined) {
    super(message, options);
    this.code = 'ABORT_ERR';
    this.name = 'AbortError';
  }
}

function timeoutError(ms) {
  const err = new Error(`the operation timed out after ${ms} ms`);
  err.code = 'ETIMEDOUT';
  err.errno = abi.codes.ALOOP_ETIMEDOUT;
  err.aloopCode = 'ALOOP_ETIMEDOUT';
  return err;
}

module.exports = { makeError, decorate, AbortError, timeoutError };
