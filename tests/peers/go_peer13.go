// go_peer13: a crypto/tls client or server for tlslab's TLS 1.3 interop tests.
//
//	go_peer13 -mode client -addr 127.0.0.1:PORT -ca ca.pem [-name localhost] [-groups X25519,P256]
//	          [-cert client.pem -key client.key] [-conns N]
//	go_peer13 -mode server -cert chain.pem -key key.pem [-groups P256] [-client-ca ca.pem] [-conns N]
//
// TLS 1.3 only.  Go does not let a program choose TLS 1.3 cipher suites, so the suite is
// chosen by the tlslab side.  The client makes N connections in a row sharing one
// ClientSessionCache (so the second one can resume), sends an HTTP/1.0 GET on each,
// prints "version=... suite=... resumed=..." and the response.  The server listens on
// 127.0.0.1:0, prints "listening PORT", answers N connections with a small HTTP response,
// then exits; with -client-ca it requires and verifies a client certificate.
// Only loopback addresses are accepted.  Standard library only.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go_peer13: "+format+"\n", args...)
	os.Exit(1)
}

func curves(list string) []tls.CurveID {
	names := map[string]tls.CurveID{"X25519": tls.X25519, "P256": tls.CurveP256,
		"P384": tls.CurveP384, "P521": tls.CurveP521}
	var out []tls.CurveID
	for _, n := range strings.Split(list, ",") {
		if n == "" {
			continue
		}
		id, ok := names[n]
		if !ok {
			fail("unknown group %s (X25519, P256, P384, P521)", n)
		}
		out = append(out, id)
	}
	return out
}

func pool(file string) *x509.CertPool {
	pem, err := os.ReadFile(file)
	if err != nil {
		fail("%v", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		fail("no certificate in %s", file)
	}
	return p
}

func describe(st tls.ConnectionState) string {
	v := "TLSv1.3"
	if st.Version != tls.VersionTLS13 {
		v = fmt.Sprintf("0x%04x", st.Version)
	}
	s := fmt.Sprintf("version=%s suite=%s resumed=%t", v, tls.CipherSuiteName(st.CipherSuite), st.DidResume)
	if len(st.PeerCertificates) > 0 {
		s += " peer=" + st.PeerCertificates[0].Subject.CommonName
	}
	return s
}

func main() {
	mode := flag.String("mode", "client", "client or server")
	addr := flag.String("addr", "", "client: host:port to connect to (loopback only)")
	ca := flag.String("ca", "", "client: PEM file of trusted CAs")
	name := flag.String("name", "localhost", "client: server name (SNI and verification)")
	cert := flag.String("cert", "", "PEM certificate chain (server identity, or client certificate)")
	key := flag.String("key", "", "PEM private key for -cert")
	clientCA := flag.String("client-ca", "", "server: require a client certificate issued under these CAs")
	groups := flag.String("groups", "", "comma-separated groups in preference order (X25519,P256,P384,P521)")
	conns := flag.Int("conns", 1, "connections to make (client) or answer (server)")
	timeout := flag.Duration("timeout", 12*time.Second, "overall time limit")
	flag.Parse()

	time.AfterFunc(*timeout, func() { fail("timed out after %v", *timeout) })
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS13,
		CurvePreferences: curves(*groups)}
	if *cert != "" {
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			fail("%v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if *mode == "client" {
		host, _, err := net.SplitHostPort(*addr)
		if err != nil || (host != "127.0.0.1" && host != "::1") {
			fail("-addr must be 127.0.0.1:PORT or [::1]:PORT, not %q", *addr)
		}
		cfg.RootCAs = pool(*ca)
		cfg.ServerName = *name
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		for i := 0; i < *conns; i++ {
			client(*addr, cfg)
		}
		return
	}
	if *clientCA != "" {
		cfg.ClientCAs = pool(*clientCA)
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		fail("%v", err)
	}
	fmt.Printf("listening %d\n", ln.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	for i := 0; i < *conns; i++ {
		c, err := ln.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		serve(c.(*tls.Conn))
	}
}

func client(addr string, cfg *tls.Config) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		fail("handshake: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(8 * time.Second))
	fmt.Println(describe(conn.ConnectionState()))
	if _, err := conn.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
		fail("write: %v", err)
	}
	// reading to the end also reads the NewSessionTicket messages into the cache
	body, err := io.ReadAll(conn)
	os.Stdout.Write(body)
	if err != nil {
		fail("read: %v", err)
	}
	fmt.Println()
}

func serve(c *tls.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(8 * time.Second))
	if err := c.Handshake(); err != nil {
		fmt.Printf("error %v\n", err)
		return
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			fmt.Printf("error %v\n", err)
			return
		}
		if line == "\r\n" || line == "\n" {
			break
		}
	}
	info := describe(c.ConnectionState())
	fmt.Printf("served %s\n", info)
	body := "go says hello\n" + info + "\n"
	fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	os.Stdout.Sync()
}
