'use strict';
/**
 * DNS without blocking the loop (asyncio's getaddrinfo / getnameinfo) as
 * Loop methods. Numeric hosts resolve at once; names are looked up in a
 * library thread. A failed lookup rejects with code 'ENOTFOUND' (or
 * 'EAI_AGAIN'), as node:dns.
 */
const { native, constants, operation, checkOptions } = require('./native');
const { extendLoop } = require('./loop');
const { familyNumber } = require('./net');

/** A socket type option: 'stream', 'dgram', 'raw' or a SOCK_* number. */
function typeNumber(t) {
  if (t === undefined || t === null || t === 0) return 0;
  if (t === 'stream') return constants.SOCK_STREAM;
  if (t === 'dgram') return constants.SOCK_DGRAM;
  if (t === 'raw') return constants.SOCK_RAW;
  if (Number.isInteger(t)) return t;
  throw new TypeError(`unknown socket type ${t}`);
}

function protocolNumber(p) {
  if (p === undefined || p === null || p === 0) return 0;
  if (p === 'tcp') return constants.IPPROTO_TCP;
  if (p === 'udp') return constants.IPPROTO_UDP;
  if (Number.isInteger(p)) return p;
  throw new TypeError(`unknown protocol ${p}`);
}

/** Node's family number (4 / 6) of an AF_* value. */
function familyName(af) {
  return af === constants.AF_INET ? 4 : af === constants.AF_INET6 ? 6 : af;
}

class DnsMethods {
  /**
   * Resolves host (null: the loopback addresses, or the wildcard ones with
   * flags AI_PASSIVE) and port (a number, a service name or null) to
   * [{address, family (4 or 6), port, type, protocol, canonname, scopeid}]
   * (type and protocol are the platform's SOCK_* / IPPROTO_* values, see
   * constants). options: {family (0, 4, 6), type ('stream', 'dgram' or a
   * number), protocol ('tcp', 'udp' or a number), flags (AI_* of
   * constants), signal, timeout}.
   */
  async getaddrinfo(host, port, options) {
    options = checkOptions(options);
    const service = port === undefined || port === null ? null : String(port);
    return operation(options,
      (c) => native.getaddrinfo(this, host ?? null, service, familyNumber(options.family),
                                typeNumber(options.type), protocolNumber(options.protocol),
                                options.flags ?? 0, c),
      'getaddrinfo', { hostname: host }).then((list) => list.map((ai) => ({
        address: ai.host,
        family: familyName(ai.family),
        port: ai.port,
        type: ai.type,
        protocol: ai.protocol,
        canonname: ai.canonname,
        scopeid: ai.scopeId,
      })));
  }

  /**
   * Host and service names of a numeric address (asyncio's
   * getnameinfo(sockaddr, flags)): addr is {host, port} or [host, port];
   * resolves to {host, service}. flags: NI_* of constants.
   */
  async getnameinfo(addr, flags = 0, options) {
    options = checkOptions(options);
    const [host, port] = Array.isArray(addr) ? addr : [addr?.host, addr?.port];
    return operation(options, (c) => native.getnameinfo(this, host, port ?? 0, flags, c),
      'getnameinfo', { address: host, port });
  }
}

extendLoop(DnsMethods);

module.exports = { typeNumber, protocolNumber };
