// Starts a real nexadb-server ($NEXADB_SERVER) on free ports in a temp dir and reads the
// bound gRPC port and the generated API key from its JSON log lines on stderr.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const readline = require('readline');

function serverBinary() {
  const p = process.env.NEXADB_SERVER || path.resolve(__dirname, '../../../build/test/service/nexadb-server');
  fs.accessSync(p, fs.constants.X_OK);
  return p;
}

async function startServer(extraArgs = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nexadb-js-'));
  const server = { dir, proc: null, port: null, httpPort: null, apiKey: null };
  await launch(server, extraArgs);
  server.stop = async () => {
    await kill(server.proc, 'SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  // kill -9, then the same data on the same gRPC port (clients see the connection drop)
  server.restart = async () => {
    await kill(server.proc, 'SIGKILL');
    await launch(server, ['--grpc-addr', `127.0.0.1:${server.port}`]);
  };
  return server;
}

async function kill(proc, signal) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const done = new Promise((r) => proc.on('exit', r));
  proc.kill(signal);
  const t = setTimeout(() => proc.kill('SIGKILL'), 15000);
  await done;
  clearTimeout(t);
}

async function launch(server, extraArgs) {
  const dataDir = path.join(server.dir, 'data');
  const proc = spawn(serverBinary(),
    ['--data-dir', dataDir, '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', ...extraArgs],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  const rl = readline.createInterface({ input: proc.stderr });
  const info = await new Promise((resolve, reject) => {
    const got = { port: null, httpPort: null, apiKey: null };
    const timer = setTimeout(() => reject(new Error('server did not become ready')), 20000);
    proc.on('exit', (code) => reject(new Error(`server exited early (${code})`)));
    rl.on('line', (line) => {
      let rec;
      try { rec = JSON.parse(line); } catch { return; }
      if (rec.msg === 'gRPC listening') got.port = rec.port;
      if (rec.msg === 'HTTP listening') got.httpPort = rec.port;
      if (rec.api_key) got.apiKey = rec.api_key;
      if (rec.msg === 'nexadb-server ready') { clearTimeout(timer); resolve(got); }
    });
  });
  if (!info.apiKey && fs.existsSync(path.join(dataDir, 'api_key'))) {
    info.apiKey = fs.readFileSync(path.join(dataDir, 'api_key'), 'utf8').split(/\s+/)[0];
  }
  Object.assign(server, { proc, port: info.port, httpPort: info.httpPort, apiKey: info.apiKey });
}

// n servers as one cluster (Raft on free loopback ports), started all at once: a node is
// ready only once it knows a leader, which takes a majority.
async function startCluster(n, extraArgs = []) {
  const ports = await Promise.all(Array.from({ length: n }, freePort));
  const peers = ports.map((p, i) => `${i + 1}=127.0.0.1:${p}`).join(',');
  const started = await Promise.allSettled(ports.map((_, i) =>
    startServer(['--node-id', String(i + 1), '--peers', peers, ...extraArgs])));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((r) => r.status === 'fulfilled' && r.value.stop()));
    throw failed.reason;
  }
  return started.map((r) => r.value);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

let counter = 0;
function uniqueName() {
  counter += 1;
  return `js_${process.pid}_${Date.now().toString(36)}_${counter}`;
}

module.exports = { startServer, startCluster, uniqueName };
