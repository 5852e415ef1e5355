#!/usr/bin/env bash
# ctest clients_js_pack: the package as a user gets it. `npm pack` of the built package
# (--ignore-scripts: the clients_js_install fixture has just built dist/ and proto/, and
# rebuilding them here would race the other JS tests under ctest -j), then `npm install` of
# the tarball into a fresh project outside the repository (dependencies from
# the npm cache, else the registry), and there:
# - tsc type-checks an ES module and a CommonJS module importing 'nexadb' (module nodenext, so
#   each resolves through its own condition of the exports map: dist/index.d.mts and
#   dist/index.d.ts must both be read);
# - node runs an ES module (`import`, which must resolve to dist/index.mjs) and a CommonJS one
#   (`require()`) that insert a document and find it back on a real server ($NEXADB_SERVER,
#   started by test/server.js); the ES module checks that `import` and `require()` give the
#   same classes.
set -euo pipefail
js=$(cd "$(dirname "$0")/.." && pwd)
tsc="$js/node_modules/typescript/bin/tsc"
types_node=$(node -p "require('$js/node_modules/@types/node/package.json').version")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$js" && npm pack --silent --ignore-scripts --pack-destination "$tmp" >/dev/null)
tarball=$(echo "$tmp"/nexadb-*.tgz)
app="$tmp/app"
mkdir "$app"
cd "$app"
echo '{"name": "app", "private": true}' > package.json
npm install --no-audit --no-fund --prefer-offline --loglevel=error "$tarball" "@types/node@$types_node"

cat > use.mjs <<'JS'
import assert from 'node:assert';
import { createRequire } from 'node:module';
import { NexaDB, NexaDBError } from 'nexadb';

assert.match(import.meta.resolve('nexadb'), /\/node_modules\/nexadb\/dist\/index\.mjs$/);
const cjs = createRequire(import.meta.url)('nexadb');
assert.strictEqual(cjs.NexaDB, NexaDB, 'import and require() give different NexaDB classes');
assert.strictEqual(cjs.NexaDBError, NexaDBError);
const db = new NexaDB({ host: '127.0.0.1', port: Number(process.env.NEXADB_PORT) });
const users = db.collection('pack_esm');
const id = await users.insert({ name: 'Alice', via: 'import' });
assert.deepStrictEqual((await users.find({ _id: id })).map((d) => d.via), ['import']);
await assert.rejects(db.collection('').insert({}), NexaDBError);
db.close();
JS
cat > use.cjs <<'JS'
const assert = require('node:assert');
const { NexaDB } = require('nexadb');

(async () => {
  const db = new NexaDB({ host: '127.0.0.1', port: Number(process.env.NEXADB_PORT) });
  const users = db.collection('pack_cjs');
  const id = await users.insert({ name: 'Bob', via: 'require' });
  assert.deepStrictEqual((await users.find({ _id: id })).map((d) => d.via), ['require']);
  db.close();
})().catch((e) => { console.error(e); process.exit(1); });
JS
cat > types.mts <<'TS'
import { NexaDB, type Document } from 'nexadb';
const db = new NexaDB({ port: 6970 });
const docs: Promise<Document[]> = db.collection('users').find({ age: { $gt: 25 } });
// @ts-expect-error the port is a number
new NexaDB({ port: '6970' });
export { docs };
TS
cat > types.cts <<'TS'
import nexadb = require('nexadb');
const db = new nexadb.NexaDB({ port: 6970 });
const id: Promise<string> = db.collection('users').insert({ name: 'Alice' });
// @ts-expect-error insert returns the new id, a string
const n: Promise<number> = db.collection('users').insert({ name: 'Alice' });
export = { id, n };
TS
cat > tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "module": "nodenext", "moduleResolution": "nodenext", "target": "ES2022",
    "strict": true, "noEmit": true, "types": ["node"]
  },
  "files": ["types.mts", "types.cts"]
}
JSON
node "$tsc" -p tsconfig.json --listFiles > files.txt || { grep -v '^/' files.txt >&2; exit 1; }
for want in index.d.mts index.d.ts; do
  grep -qx "$app/node_modules/nexadb/dist/$want" files.txt || { echo "tsc did not read dist/$want" >&2; exit 1; }
done

NEXADB_TEST_SERVER_JS="$js/test/server.js" node - <<'JS'
const { execFileSync } = require('node:child_process');
const { startServer } = require(process.env.NEXADB_TEST_SERVER_JS);
(async () => {
  const server = await startServer();
  try {
    const env = { ...process.env, NEXADB_PORT: String(server.port), NEXADB_API_KEY: server.apiKey };
    for (const f of ['use.mjs', 'use.cjs']) execFileSync(process.execPath, [f], { env, stdio: 'inherit' });
  } finally {
    await server.stop();
  }
})().catch((e) => { console.error(e.message); process.exit(1); });
JS
echo "clients_js_pack: $(basename "$tarball") installed; import, require() and both type entries work"
