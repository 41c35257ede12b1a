// go_peer: a crypto/tls client or server for tlslab's TLS 1.2 interop tests.
//
//	go_peer -mode client -addr 127.0.0.1:PORT -ca ca.pem -name localhost -suite IANA_NAME
//	go_peer -mode server -cert chain.pem -key key.pem -suite IANA_NAME [-conns N]
//
// The client sends an HTTP/1.0 GET, prints "version=... suite=..." and then the response.
// The server listens on 127.0.0.1:0, prints "listening PORT", answers N connections with
// a small HTTP response naming the negotiated parameters, and exits. TLS 1.2 only.
// Only loopback addresses are accepted. Standard library only.
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

func suiteID(name string) uint16 {
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if s.Name == name {
			return s.ID
		}
	}
	fmt.Fprintf(os.Stderr, "go_peer: unknown cipher suite %s\n", name)
	os.Exit(2)
	return 0
}

func versionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1.0"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go_peer: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	mode := flag.String("mode", "client", "client or server")
	addr := flag.String("addr", "", "client: host:port to connect to (loopback only)")
	ca := flag.String("ca", "", "client: PEM file of trusted CAs")
	name := flag.String("name", "localhost", "client: server name (SNI and verification)")
	cert := flag.String("cert", "", "server: PEM certificate chain")
	key := flag.String("key", "", "server: PEM private key")
	suite := flag.String("suite", "", "IANA cipher suite name (empty: Go's defaults)")
	conns := flag.Int("conns", 1, "server: connections to answer")
	timeout := flag.Duration("timeout", 10*time.Second, "overall time limit")
	flag.Parse()

	time.AfterFunc(*timeout, func() { fail("timed out after %v", *timeout) })
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}
	if *suite != "" {
		cfg.CipherSuites = []uint16{suiteID(*suite)}
	}
	if *mode == "client" {
		host, _, err := net.SplitHostPort(*addr)
		if err != nil || (host != "127.0.0.1" && host != "::1") {
			fail("-addr must be 127.0.0.1:PORT or [::1]:PORT, not %q", *addr)
		}
		pem, err := os.ReadFile(*ca)
		if err != nil {
			fail("%v", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			fail("no certificate in %s", *ca)
		}
		cfg.ServerName = *name
		conn, err := tls.Dial("tcp", *addr, cfg)
		if err != nil {
			fail("handshake: %v", err)
		}
		defer conn.Close()
		st := conn.ConnectionState()
		fmt.Printf("version=%s suite=%s\n", versionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
		if _, err := conn.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
			fail("write: %v", err)
		}
		body, err := io.ReadAll(conn)
		os.Stdout.Write(body)
		if err != nil {
			fail("read: %v", err)
		}
		return
	}
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		fail("%v", err)
	}
	cfg.Certificates = []tls.Certificate{pair}
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

func serve(c *tls.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	var head strings.Builder
	for {
		line, err := r.ReadString('\n')
		head.WriteString(line)
		if err != nil {
			fmt.Printf("error %v\n", err)
			return
		}
		if line == "\r\n" || line == "\n" {
			break
		}
	}
	st := c.ConnectionState()
	body := fmt.Sprintf("go says hello\nversion=%s\nsuite=%s\n", versionName(st.Version),
		tls.CipherSuiteName(st.CipherSuite))
	fmt.Printf("served version=%s suite=%s\n", versionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	os.Stdout.Sync()
}
