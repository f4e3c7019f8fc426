// Ubuzima Sync — MIT licence.
// The peer's server: express-pouchdb (CouchDB HTTP API) over leveldb, on 127.0.0.1, free port.
'use strict';
const path = require('path');
const fs = require('fs');
const express = require('express');
const PouchDB = require('pouchdb');

const dir = path.resolve(process.argv[2] || '.pouchdb-server');
fs.mkdirSync(dir, { recursive: true });
process.chdir(dir); // express-pouchdb writes its config.json and log.txt into the cwd
const ServerPouch = PouchDB.defaults({ prefix: dir + '/' });
const app = express();
app.use('/', require('express-pouchdb')(ServerPouch, { logPath: path.join(dir, 'log.txt'), mode: 'fullCouchDB' }));
const server = app.listen(0, '127.0.0.1', () => {
  console.log('pouchdb-server listening on http://127.0.0.1:' + server.address().port);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
