'use strict';
/**
 * npm run build: builds libasyncloop.so.MAJOR and asyncloop.node into build/
 * of this package (index.js looks there first), from the bundled sources
 * (engine/) in an installed package, or from the checkout this folder is in.
 */
const path = require('path');
const { PKG_DIR, engineRoot, buildNative } = require('./native');

try {
  buildNative(engineRoot(), path.join(PKG_DIR, 'build'));
} catch (e) {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
}
