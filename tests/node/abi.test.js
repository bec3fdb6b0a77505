'use strict';
// The generated error table (bindings/node/abi.js, from tools/gen_abi.py)
// agrees with the loaded library.
const test = require('node:test');
const assert = require('node:assert/strict');
const { asyncloop } = require('./_helpers');
const abi = require('../../bindings/node/abi');

test('every generated code has the library\'s name and description', () => {
  assert.ok(Object.keys(abi.codes).length > 30);
  for (const [name, code] of Object.entries(asyncloop.codes)) {
    assert.equal(asyncloop.errName(code), name);
    const [aloopName, description, nodeCode] = abi.errors.get(code);
    assert.deepEqual([aloopName, description], [name, asyncloop.strerror(code)]);
    // Node's code: the POSIX name for an errno, else Node's or ERR_ASYNCLOOP_*.
    if (code > -3000) assert.equal(nodeCode, name.slice('ALOOP_'.length));
    else assert.match(nodeCode, /^(ERR_[A-Z_]+|ENOTFOUND|UNKNOWN)$/);
  }
});

test('the binding checks the header\'s major version', () => {
  assert.equal(asyncloop.version.major, abi.VERSION.major);
});
