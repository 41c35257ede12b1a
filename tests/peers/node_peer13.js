// node_peer13.js: a Node.js tls client or server for tlslab's TLS 1.3 interop tests.
//
//   node node_peer13.js client port=PORT ca=CA_PEM [suites=S1:S2] [groups=X25519:P-256]
//                              [cert=CHAIN_PEM key=KEY_PEM] [conns=N]
//   node node_peer13.js server cert=CHAIN_PEM key=KEY_PEM [suites=...] [groups=...]
//                              [client_ca=CA_PEM] [conns=N]
//
// TLS 1.3 only.  suites are IANA TLS 1.3 names (given to Node's `ciphers`), groups are
// OpenSSL group names (Node's `ecdhCurve`).  The client connects to 127.0.0.1:PORT N times
// in a row, offering the session (ticket) of the previous connection, verifies the chain
// for "localhost", sends an HTTP/1.0 GET and prints "version=... suite=... resumed=..."
// then the response.  The server listens on 127.0.0.1 (system-chosen port), prints
// "listening PORT", answers N connections (requiring a client certificate under
// client_ca if given) and exits.  Everything is bounded in time.
'use strict';
const fs = require('fs');
const tls = require('tls');

const [mode, ...rest] = process.argv.slice(2);
const opt = Object.fromEntries(rest.map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
setTimeout(() => { console.error('node_peer13: timed out'); process.exit(3); }, 15000).unref();

function describe(sock) {
  const c = sock.getCipher();
  let s = `version=${sock.getProtocol()} suite=${c.standardName || c.name} resumed=${sock.isSessionReused()}`;
  const peer = sock.getPeerCertificate();
  if (peer && peer.subject) s += ` peer=${peer.subject.CN}`;
  return s;
}

function common() {
  const o = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' };
  // Node takes TLS 1.3 suites (TLS_* names) in `ciphers`, next to the TLS 1.2 ones
  if (opt.suites) o.ciphers = opt.suites;
  if (opt.groups) o.ecdhCurve = opt.groups;
  if (opt.cert) { o.cert = fs.readFileSync(opt.cert); o.key = fs.readFileSync(opt.key); }
  return o;
}

if (mode === 'client') {
  let left = Number(opt.conns || 1);
  let session;
  const once = () => {
    const sock = tls.connect({
      ...common(), host: '127.0.0.1', port: Number(opt.port), servername: 'localhost',
      ca: fs.readFileSync(opt.ca), session,
      checkServerIdentity: (host, cert) => tls.checkServerIdentity('localhost', cert),
    }, () => {
      const key = sock.getEphemeralKeyInfo();
      process.stdout.write(describe(sock) + ` group=${key && key.name}\n`);
      sock.write('GET / HTTP/1.0\r\n\r\n');
    });
    sock.on('session', (s) => { session = s; });
    sock.setTimeout(10000, () => { console.error('node_peer13: socket timeout'); process.exit(4); });
    sock.on('data', (d) => process.stdout.write(d));
    sock.on('error', (e) => { console.error('node_peer13: ' + e.message); process.exit(1); });
    sock.on('end', () => sock.end());
    sock.on('close', () => { if (--left > 0) once(); else process.stdout.write('\n'); });
  };
  once();
} else {
  let left = Number(opt.conns || 1);
  const o = common();
  if (opt.client_ca) {
    o.ca = fs.readFileSync(opt.client_ca);
    o.requestCert = true;
    o.rejectUnauthorized = true;
  }
  const server = tls.createServer(o, (sock) => {
    let head = '';
    sock.setTimeout(10000, () => sock.destroy());
    sock.on('data', (d) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const info = describe(sock);
      process.stdout.write('served ' + info + '\n');
      const body = 'node says hello\n' + info + '\n';
      sock.end(`HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    });
    sock.on('close', () => { if (--left <= 0) server.close(); });
    sock.on('error', (e) => process.stdout.write('error ' + e.message + '\n'));
  });
  server.on('tlsClientError', (e) => {
    process.stdout.write('error ' + e.message + '\n');
    if (--left <= 0) server.close();
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
}
