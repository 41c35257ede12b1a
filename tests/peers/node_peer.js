// node_peer.js: a Node.js tls client or server for tlslab's TLS 1.2 interop tests.
//
//   node node_peer.js client PORT CA_PEM OPENSSL_CIPHER
//   node node_peer.js server CHAIN_PEM KEY_PEM OPENSSL_CIPHER CONNS
//
// Client: connects to 127.0.0.1:PORT, verifies the chain for "localhost", sends an
// HTTP/1.0 GET, prints "version=... suite=..." and the response.  Server: listens on
// 127.0.0.1 (system-chosen port), prints "listening PORT", answers CONNS connections
// with a small HTTP response, then exits.  TLS 1.2 only; everything is bounded in time.
'use strict';
const fs = require('fs');
const tls = require('tls');

const [mode, ...args] = process.argv.slice(2);
setTimeout(() => { console.error('node_peer: timed out'); process.exit(3); }, 15000).unref();

function describe(sock) {
  const c = sock.getCipher();
  return `version=${sock.getProtocol()} suite=${c.standardName || c.name}`;
}

if (mode === 'client') {
  const [port, ca, cipher] = args;
  const sock = tls.connect({
    host: '127.0.0.1', port: Number(port), servername: 'localhost', ca: fs.readFileSync(ca),
    minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: cipher,
    checkServerIdentity: (host, cert) => tls.checkServerIdentity('localhost', cert),
  }, () => {
    process.stdout.write(describe(sock) + '\n');
    sock.write('GET / HTTP/1.0\r\n\r\n');
  });
  sock.setTimeout(10000, () => { console.error('node_peer: socket timeout'); process.exit(4); });
  sock.on('data', (d) => process.stdout.write(d));
  sock.on('error', (e) => { console.error('node_peer: ' + e.message); process.exit(1); });
  sock.on('end', () => sock.end());
} else {
  const [chain, key, cipher, conns] = args;
  let left = Number(conns);
  const server = tls.createServer({
    cert: fs.readFileSync(chain), key: fs.readFileSync(key),
    minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: cipher,
    dhparam: 'auto',  // OpenSSL's built-in groups; without it Node offers no DHE suite
  }, (sock) => {
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
