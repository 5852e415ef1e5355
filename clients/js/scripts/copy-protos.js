// Copies the API's .proto files into ./proto, which the package ships and loads at run time
// (@grpc/proto-loader): ../../proto/nexadb/v1/*.proto, and google/api/{annotations,http}.proto
// which they import. google/protobuf/*.proto come with protobufjs. Run by `npm run build`
// (so by `npm ci`/`npm install` through "prepare", and before `npm pack`).
'use strict';
const fs = require('fs');
const path = require('path');

const here = path.resolve(__dirname, '..');
const out = path.join(here, 'proto');
const apiRoot = process.env.NEXADB_PROTO_DIR || path.resolve(here, '..', '..', 'proto');
const googleapisRoots = [
  process.env.NEXADB_GOOGLEAPIS_DIR,
  '/usr/share/gocode/src/github.com/grpc-ecosystem/grpc-gateway/third_party/googleapis',
].filter(Boolean);

function copy(fromRoot, rel) {
  const dst = path.join(out, rel);
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  fs.copyFileSync(path.join(fromRoot, rel), dst);
}

const apiDir = path.join(apiRoot, 'nexadb', 'v1');
if (!fs.existsSync(apiDir)) {
  if (fs.existsSync(path.join(out, 'nexadb', 'v1'))) process.exit(0); // a packed copy: keep it
  console.error(`copy-protos: no protos at ${apiDir} (set NEXADB_PROTO_DIR)`);
  process.exit(1);
}
fs.rmSync(out, { recursive: true, force: true });
for (const f of fs.readdirSync(apiDir).filter((f) => f.endsWith('.proto')).sort()) {
  copy(apiRoot, path.join('nexadb', 'v1', f));
}
const gRoot = googleapisRoots.find((r) => fs.existsSync(path.join(r, 'google', 'api', 'annotations.proto')));
if (!gRoot) {
  console.error('copy-protos: google/api/annotations.proto not found ' +
    '(install Debian golang-github-grpc-ecosystem-grpc-gateway-dev or set NEXADB_GOOGLEAPIS_DIR)');
  process.exit(1);
}
copy(gRoot, path.join('google', 'api', 'annotations.proto'));
copy(gRoot, path.join('google', 'api', 'http.proto'));
