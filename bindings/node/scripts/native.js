'use strict';
/**
 * Builds the native half of the npm package: libasyncloop.so.MAJOR (Go,
 * -buildmode=c-shared, stripped) and asyncloop.node (the N-API addon, CMake,
 * RUNPATH $ORIGIN) side by side in one folder. Used by
 *   - scripts/prepack.js  (npm pack: prebuilds/<platform>-<arch>/),
 *   - scripts/install.js  (npm install with no matching prebuilt: build/),
 *   - scripts/build.js    (npm run build: build/).
 * Needs Go, cmake and a C compiler, and the Node-API headers (node_api.h and
 * uv.h, installed with Node: <prefix>/include/node, or NODE_API_INCLUDE_DIR).
 * Never uses the network: the Go sources are the checkout's or the package's
 * engine/ (with vendor/).
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync, spawnSync } = require('child_process');

const PKG_DIR = path.resolve(__dirname, '..');

function log(msg) {
  process.stderr.write(`asyncloop-engine: ${msg}\n`);
}

function isEngine(dir) {
  return ['go.mod', 'capi', 'core', path.join('include', 'asyncloop.h')]
    .every((f) => fs.existsSync(path.join(dir, f)));
}

/** The folder holding go.mod, core/, capi/ and include/asyncloop.h. */
function engineRoot() {
  const candidates = [];
  if (process.env.ASYNCLOOP_SOURCE_DIR) candidates.push(path.resolve(process.env.ASYNCLOOP_SOURCE_DIR));
  candidates.push(path.join(PKG_DIR, 'engine'), path.resolve(PKG_DIR, '..', '..'));
  const found = candidates.find(isEngine);
  if (!found) {
    throw new Error(`asyncloop-engine: no Go sources of libasyncloop (looked in ${candidates.join(', ')})`);
  }
  return found;
}

function headerVersion(root) {
  const text = fs.readFileSync(path.join(root, 'include', 'asyncloop.h'), 'utf8');
  return ['MAJOR', 'MINOR', 'PATCH'].map((p) => {
    const m = text.match(new RegExp(`^#define ALOOP_VERSION_${p} (\\d+)`, 'm'));
    if (!m) throw new Error(`no ALOOP_VERSION_${p} in include/asyncloop.h`);
    return m[1];
  }).join('.');
}

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function run(cmd, args, opts) {
  log(`  ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  if (r.error) throw new Error(`asyncloop-engine: cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`asyncloop-engine: ${cmd} ${args[0]} failed (exit ${r.status})`);
}

/** node_api.h + uv.h of the running Node, if installed with it. */
function nodeApiIncludeDir() {
  const candidates = [
    process.env.NODE_API_INCLUDE_DIR,
    path.resolve(path.dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node', '/usr/local/include/node',
  ].filter(Boolean);
  return candidates.find((d) => fs.existsSync(path.join(d, 'node_api.h')) &&
                                fs.existsSync(path.join(d, 'uv.h'))) || null;
}

/**
 * Builds libasyncloop.so.MAJOR and asyncloop.node into outDir from the
 * sources at root. Returns {library, addon}.
 */
function buildNative(root, outDir) {
  const version = headerVersion(root);
  const major = version.split('.')[0];
  const go = process.env.GO || which('go');
  const cmake = process.env.CMAKE || which('cmake');
  if (!go) throw new Error('asyncloop-engine: building the library needs Go (https://go.dev/dl/)');
  if (!cmake) throw new Error('asyncloop-engine: building the addon needs cmake');
  const include = nodeApiIncludeDir();
  if (!include) {
    throw new Error('asyncloop-engine: building the addon needs node_api.h and uv.h (installed with ' +
                    'Node in <prefix>/include/node; on Debian: apt-get install libnode-dev); ' +
                    'or set NODE_API_INCLUDE_DIR');
  }
  fs.mkdirSync(outDir, { recursive: true });
  const library = path.join(outDir, `libasyncloop.so.${major}`);
  const start = Date.now();
  log(`building libasyncloop ${version} with Go in ${root} (about 30 s with a cold Go build cache)`);
  const goArgs = ['build', '-buildmode=c-shared', '-buildvcs=false', '-trimpath',
                  // -X: no asynchronous preemption (ALOOP_GO_LDFLAGS, capi/main.go)
                  '-ldflags=-s -w -X=runtime.godebugDefault=asyncpreemptoff=1' +
                    ` -extldflags=-Wl,-soname,libasyncloop.so.${major}`,
                  '-o', library, './capi'];
  if (fs.existsSync(path.join(root, 'vendor', 'modules.txt'))) goArgs.splice(1, 0, '-mod=vendor');
  run(go, goArgs, { cwd: root, env: { ...process.env, CGO_ENABLED: '1' } });
  fs.rmSync(library.replace(/\.so\.\d+$/, '.so.h'), { force: true }); // cgo's header
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'asyncloop-node-build-'));
  try {
    log('building the N-API addon with CMake');
    const gen = which('ninja') ? ['-G', 'Ninja'] : [];
    run(cmake, ['-S', PKG_DIR, '-B', tmp, ...gen, '-DCMAKE_BUILD_TYPE=Release',
                `-DASYNCLOOP_INCLUDE_DIR=${path.join(root, 'include')}`,
                `-DASYNCLOOP_NODE_OUTPUT_DIR=${outDir}`, `-DNODE_API_INCLUDE_DIR=${include}`],
        { stdio: ['ignore', 'ignore', 'inherit'] });
    run(cmake, ['--build', tmp], { stdio: ['ignore', 'ignore', 'inherit'] });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const addon = path.join(outDir, 'asyncloop.node');
  if (!fs.existsSync(addon)) throw new Error(`asyncloop-engine: the build made no ${addon}`);
  log(`built ${path.relative(process.cwd(), outDir) || '.'}/{${path.basename(library)}, asyncloop.node} ` +
      `in ${((Date.now() - start) / 1000).toFixed(1)} s`);
  return { library, addon };
}

/** Copies what `go build ./capi` reads (no tests) to dest and vendors its modules. */
function stageEngine(root, dest) {
  fs.rmSync(dest, { recursive: true, force: true });
  const copy = (rel) => {
    const src = path.join(root, rel);
    const dst = path.join(dest, rel);
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    fs.copyFileSync(src, dst);
  };
  ['go.mod', 'go.sum', path.join('include', 'asyncloop.h')].forEach(copy);
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'testdata') walk(r);
      } else if (!e.name.endsWith('_test.go')) {
        copy(r);
      }
    }
  };
  walk('core');
  walk('capi');
  const go = process.env.GO || which('go');
  if (!go) throw new Error('asyncloop-engine: staging the sources needs Go (go mod vendor)');
  log('vendoring the Go dependencies of core/ and capi/ (go mod vendor)');
  execFileSync(go, ['mod', 'vendor'], { cwd: dest, env: { ...process.env, GOFLAGS: '-mod=mod' },
                                        stdio: ['ignore', 'inherit', 'inherit'] });
}

module.exports = { PKG_DIR, engineRoot, headerVersion, buildNative, stageEngine, log };
