#!/usr/bin/env bash
# check_types.sh SOURCE_DIR WORK_DIR
#
# The Node binding's types (bindings/node/index.d.ts) against the README's
# examples: every ```ts block of bindings/node/README.md becomes a module of a
# small ESM project that imports 'asyncloop-engine' (a link to
# bindings/node), compiled with `tsc --strict --noEmit`. TypeScript and
# @types/node are installed from npm into WORK_DIR/tools once (then reused).
set -euo pipefail
src=$(cd "${1:?usage: check_types.sh SOURCE_DIR WORK_DIR}" && pwd)
work=${2:?usage: check_types.sh SOURCE_DIR WORK_DIR}
mkdir -p "$work"
work=$(cd "$work" && pwd)
tools=$work/tools
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
if [ ! -x "$tools/node_modules/.bin/tsc" ]; then
  mkdir -p "$tools"
  (cd "$tools" && npm install --no-save --silent typescript@5 @types/node@20 >/dev/null) \
    || { echo "FAIL: npm install typescript @types/node" >&2; exit 1; }
fi
proj=$work/project
rm -rf "$proj"
mkdir -p "$proj/node_modules/@types"
ln -s "$src/bindings/node" "$proj/node_modules/asyncloop-engine"
ln -s "$tools/node_modules/@types/node" "$proj/node_modules/@types/node"
echo '{"type": "module"}' >"$proj/package.json"
cat >"$proj/tsconfig.json" <<'JSON'
{
  "compilerOptions": {
    "strict": true,
    "noEmit": true,
    "target": "es2022",
    "module": "nodenext",
    "moduleResolution": "nodenext",
    "types": ["node"],
    "skipLibCheck": false
  },
  "include": ["*.ts"]
}
JSON
n=$(awk -v dir="$proj" '
  /^```ts$/ { n++; f = sprintf("%s/readme_%d.ts", dir, n); inblk = 1; next }
  /^```/ { if (inblk) { inblk = 0; printf "export {};\n" >> f; close(f) } next }
  inblk { print >> f }
  END { print n + 0 }' "$src/bindings/node/README.md")
[ "$n" -gt 0 ] || { echo "FAIL: no \`\`\`ts block in bindings/node/README.md" >&2; exit 1; }
"$tools/node_modules/.bin/tsc" -p "$proj/tsconfig.json"
echo "ok: $n README example(s) pass tsc --strict against index.d.ts"
