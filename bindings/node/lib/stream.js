'use strict';
/**
 * A stream.Duplex over a stream transport, so that pipeline(), pipe() and
 * `for await` work: a TransportStream is the transport's protocol (pass it
 * to createConnection, return it from a server's protocol factory) and a
 * Duplex at once.
 *
 *   const s = new TransportStream();
 *   await loop.createConnection(host, port, s);
 *   await pipeline(fs.createReadStream(file), s);   // or: for await (const chunk of s)
 *
 * Back-pressure both ways: when push() says the readable buffer is full the
 * transport stops reading (pauseReading) until _read(); while the
 * transport's write buffer is above its high-water mark (pauseWriting) the
 * Duplex holds its write callbacks. end() half-closes (writeEof; a TLS
 * transport closes); destroy() aborts. allowHalfOpen is false by default,
 * as for net.Socket: the peer's EOF ends the writable side too.
 */
const { Duplex } = require('stream');

class TransportStream extends Duplex {
  constructor(options = {}) {
    super({ allowHalfOpen: false, ...options });
    this.transport = null;
    this._readPaused = false;
    this._writePaused = false;
    this._held = []; // write callbacks held while writing is paused
    this._gone = false;
  }

  // -- the protocol ---------------------------------------------------------

  connectionMade(transport) {
    this.transport = transport;
    this.emit('connect');
  }

  dataReceived(data) {
    if (!this.push(data) && !this._readPaused && !this._gone) {
      this._readPaused = true;
      this.transport.pauseReading();
    }
  }

  eofReceived() {
    this.push(null);
    if (!this.allowHalfOpen) {
      this.end();
      return false; // the transport closes (after flushing what was written)
    }
    // Half-open: the writable side goes on; its end closes the transport.
    return !this.writableFinished;
  }

  connectionLost(err) {
    this._gone = true;
    const held = this._held;
    this._held = [];
    for (const cb of held) cb(err || null);
    if (err) {
      this.destroy(err);
      return;
    }
    if (!this.readableEnded) this.push(null);
    if (!this.writableEnded) this.end();
  }

  pauseWriting() {
    this._writePaused = true;
  }

  resumeWriting() {
    this._writePaused = false;
    const held = this._held;
    this._held = [];
    for (const cb of held) cb();
  }

  // -- the Duplex -----------------------------------------------------------

  _read() {
    if (this._readPaused && !this._gone) {
      this._readPaused = false;
      this.transport.resumeReading();
    }
  }

  _send(fn, cb) {
    if (this._gone || this.transport === null) {
      cb(this.transport === null ? new Error('the transport is not connected yet') : null);
      return;
    }
    try {
      fn();
    } catch (e) {
      cb(e);
      return;
    }
    if (this._writePaused) this._held.push(cb);
    else cb();
  }

  _write(chunk, encoding, cb) {
    this._send(() => this.transport.write(typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk), cb);
  }

  _writev(chunks, cb) {
    this._send(() => this.transport.writelines(chunks.map((c) => (typeof c.chunk === 'string'
      ? Buffer.from(c.chunk, c.encoding) : c.chunk))), cb);
  }

  _final(cb) {
    if (!this._gone && this.transport !== null) {
      const t = this.transport;
      if (this.readableEnded || !t.canWriteEof()) t.close();
      else t.writeEof();
    }
    cb();
  }

  _destroy(err, cb) {
    if (!this._gone && this.transport !== null) {
      if (err) this.transport.abort();
      else this.transport.close();
    }
    cb(err);
  }
}

/**
 * A Duplex over a transport that is already connected: it becomes the
 * transport's protocol (data the previous protocol received stays there).
 */
function toDuplex(transport, options) {
  const s = new TransportStream(options);
  transport.setProtocol(s);
  s.connectionMade(transport);
  return s;
}

module.exports = { TransportStream, toDuplex };
