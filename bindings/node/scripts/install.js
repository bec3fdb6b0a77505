'use strict';
/**
 * npm install: nothing to do when the package carries a prebuilt addon and
 * library for this platform (prebuilds/<platform>-<arch>/); otherwise, or
 * with ASYNCLOOP_BUILD_FROM_SOURCE=1, builds both from the bundled sources
 * (engine/) into build/. No network: Go builds from engine/vendor/.
 * In a checkout (no engine/, no prebuilds/) it does nothing: the CMake build
 * (or `npm run build`) makes the addon there.
 */
const fs = require('fs');
const path = require('path');
const { PKG_DIR, buildNative, log } = require('./native');

const prebuilt = path.join(PKG_DIR, 'prebuilds', `${process.platform}-${process.arch}`, 'asyncloop.node');
const engine = path.join(PKG_DIR, 'engine');
const force = /^(1|true|yes)$/i.test(process.env.ASYNCLOOP_BUILD_FROM_SOURCE || '');

try {
  if (!fs.existsSync(engine)) {
    log('no bundled sources (a checkout): nothing to build at install; use `npm run build` or CMake');
  } else if (fs.existsSync(prebuilt) && !force) {
    log(`using the prebuilt addon and library for ${process.platform}-${process.arch}`);
  } else {
    log(force ? 'ASYNCLOOP_BUILD_FROM_SOURCE is set: building from the bundled sources'
              : `no prebuilt binary for ${process.platform}-${process.arch}: building from the bundled sources`);
    buildNative(engine, path.join(PKG_DIR, 'build'));
  }
} catch (e) {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
}
