'use strict';
/**
 * asyncio.Future on an asyncloop loop (a library future). Done-callbacks run
 * on the loop (never synchronously). A Future is awaitable (it has then()).
 */
const { native, makeError, checkFunction } = require('./native');
const { newId } = require('./loop');
const abi = require('../abi');

const { ALOOP_ECANCELED, ALOOP_ESTATE, ALOOP_EUNKNOWN } = abi.codes;

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

  /** The result; throws the exception, a cancellation or ERR_INVALID_STATE. */
  result() {
    this._check();
    if (this._exception !== null) throw this._exception;
    return this._result;
  }

  /** The exception (null if none); throws a cancellation or ERR_INVALID_STATE. */
  exception() {
    this._check();
    return this._exception;
  }

  /** fn(future) runs on the loop once the future is done. */
  addDoneCallback(fn) {
    checkFunction(fn, 'callback');
    const id = newId();
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

module.exports = { Future };
