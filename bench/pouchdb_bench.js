// Ubuzima Sync — MIT licence.
// The PouchDB side of the comparison: replicate the same records local → server (push) or
// server → a fresh local database (pull), through a counting TCP proxy; prints one JSON line.
'use strict';
const fs = require('fs');
const net = require('net');
const path = require('path');
const readline = require('readline');
const PouchDB = require('pouchdb');

// Same method as bench/proxy.cpp: bytes per direction, and one HTTP exchange each time a
// connection's client speaks after the server (HTTP/1.1 clients do not pipeline).
function countingProxy(targetPort) {
  const counts = { up: 0, down: 0, exchanges: 0, connections: 0 };
  const server = net.createServer((client) => {
    counts.connections++;
    let clientTurn = false;
    const upstream = net.connect(targetPort, '127.0.0.1');
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.on('data', (d) => { if (!clientTurn) counts.exchanges++; clientTurn = true; counts.up += d.length; upstream.write(d); });
    upstream.on('data', (d) => { clientTurn = false; counts.down += d.length; client.write(d); });
    const end = () => { client.destroy(); upstream.destroy(); };
    client.on('close', end); upstream.on('close', end); client.on('error', end); upstream.on('error', end);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, counts })));
}

function rm(p) { fs.rmSync(p, { recursive: true, force: true }); }

function peakRssKb() {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(/VmHWM:\s+(\d+)/);
  return m ? Number(m[1]) : -1;
}

async function loadRecords(db, file) {
  const rl = readline.createInterface({ input: fs.createReadStream(file) });
  let docs = [];
  let n = 0;
  for await (const line of rl) {
    const r = JSON.parse(line);
    docs.push(Object.assign({ _id: r.id, type: r.t }, r.f));
    n++;
    if (docs.length === 1000) { await db.bulkDocs(docs); docs = []; }
  }
  if (docs.length) await db.bulkDocs(docs);
  return n;
}

async function main() {
  const [mode, serverPort, work, recordsFile] = process.argv.slice(2);
  const local = path.resolve(work, mode === 'push' ? 'pouch-device-a' : 'pouch-device-b');
  rm(local);
  const db = new PouchDB(local);
  let n = 0;
  if (mode === 'push') n = await loadRecords(db, recordsFile);
  const { server, counts } = await countingProxy(Number(serverPort));
  const remote = new PouchDB('http://127.0.0.1:' + server.address().port + '/bench');
  const start = process.hrtime.bigint();
  const result = mode === 'push' ? await PouchDB.replicate(db, remote) : await PouchDB.replicate(remote, db);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (result.status !== 'complete') throw new Error('replication ' + result.status);
  const records = result.docs_written;
  const out = {
    bench: 'pouchdb_sync', direction: mode, records, seconds, records_per_s: records / seconds,
    up_bytes: counts.up, down_bytes: counts.down, up_bytes_per_record: counts.up / records,
    down_bytes_per_record: counts.down / records, http_requests: counts.exchanges,
    connections: counts.connections, client_peak_rss_kb: peakRssKb(),
  };
  if (mode === 'push' && records !== n) throw new Error('pushed ' + records + ' of ' + n);
  console.log(JSON.stringify(out));
  await remote.close();
  await db.close();
  server.close();
  rm(local);
}

main().catch((e) => { console.error('pouchdb_bench: ' + (e && e.stack || e)); process.exit(1); });
