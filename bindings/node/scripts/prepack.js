'use strict';
/**
 * npm pack / npm publish: stages what the tarball carries besides the JS,
 *   engine/                        the Go sources of the library (go.mod,
 *                                  go.sum, core/, capi/, include/asyncloop.h,
 *                                  vendor/), for installs that build from source;
 *   prebuilds/<platform>-<arch>/   asyncloop.node + libasyncloop.so.MAJOR,
 *                                  built from exactly those sources.
 * `node scripts/prepack.js --clean` (postpack) removes both again.
 *
 * The sources come from the checkout this package lives in (../..), or from
 * $ASYNCLOOP_SOURCE_DIR (the tests pack a copy of this folder that way).
 * The package version must equal the header's (ALOOP_VERSION_*).
 */
const fs = require('fs');
const path = require('path');
const { PKG_DIR, engineRoot, headerVersion, buildNative, stageEngine, log } = require('./native');

const engineDir = path.join(PKG_DIR, 'engine');
const prebuildsDir = path.join(PKG_DIR, 'prebuilds');

function main() {
  if (process.argv.includes('--clean')) {
    fs.rmSync(engineDir, { recursive: true, force: true });
    fs.rmSync(prebuildsDir, { recursive: true, force: true });
    return;
  }
  const root = process.env.ASYNCLOOP_SOURCE_DIR
    ? path.resolve(process.env.ASYNCLOOP_SOURCE_DIR)
    : path.resolve(PKG_DIR, '..', '..');
  if (path.resolve(root) === engineDir) throw new Error('prepack: run it from a checkout');
  const version = headerVersion(root);
  const pkg = JSON.parse(fs.readFileSync(path.join(PKG_DIR, 'package.json'), 'utf8'));
  if (pkg.version !== version) {
    throw new Error(`prepack: package.json says ${pkg.version} but include/asyncloop.h says ${version}; ` +
                    'they must be equal (python3 tools/version.py --set X.Y.Z updates every copy)');
  }
  log(`staging engine/ from ${root}`);
  stageEngine(root, engineDir);
  const out = path.join(prebuildsDir, `${process.platform}-${process.arch}`);
  fs.rmSync(prebuildsDir, { recursive: true, force: true });
  buildNative(engineDir, out);
}

try {
  main();
} catch (e) {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
}
