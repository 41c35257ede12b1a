// JavaPeer13: a JSSE client or server for tlslab's TLS 1.3 interop tests.
//
//   java JavaPeer13 client PORT CA_PEM SUITE CLIENT_P12 CONNS
//        connect CONNS times in a row to 127.0.0.1:PORT with one SSLContext (so the second
//        connection can resume), verify the chain against CA_PEM for "localhost", send an
//        HTTP/1.0 GET and print "version=... suite=..." and the response; CLIENT_P12
//        (password "tlslab") is a client certificate, "-" for none
//   java JavaPeer13 server KEYSTORE_P12 PASSWORD SUITE CONNS CLIENT_CA_PEM
//        listen on 127.0.0.1 (port chosen by the system), print "listening PORT", answer
//        CONNS connections with a small HTTP response, then exit; CLIENT_CA_PEM ("-" for
//        none) makes a client certificate required and verified against it
//
// SUITE is an IANA TLS 1.3 cipher suite name ("-" for the JDK's defaults); TLS 1.3 only.
// Groups are chosen with -Djdk.tls.namedGroups=... on the java command line.
// Every socket has a read timeout; the whole program exits after 15 seconds.
import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.Collection;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSession;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;

public class JavaPeer13 {
    static final String[] PROTOCOLS = {"TLSv1.3"};
    static final char[] P12_PASSWORD = "tlslab".toCharArray();

    public static void main(String[] args) throws Exception {
        Thread watchdog = new Thread(() -> {
            try { Thread.sleep(15000); } catch (InterruptedException e) { return; }
            System.err.println("JavaPeer13: timed out");
            System.exit(3);
        });
        watchdog.setDaemon(true);
        watchdog.start();
        if (args[0].equals("client")) {
            client(Integer.parseInt(args[1]), args[2], args[3], args[4], Integer.parseInt(args[5]));
        } else {
            server(args[1], args[2].toCharArray(), args[3], Integer.parseInt(args[4]), args[5]);
        }
        System.out.flush();
        System.exit(0);
    }

    static TrustManager[] trust(String caFile) throws Exception {
        KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        try (InputStream in = new FileInputStream(caFile)) {
            Collection<? extends Certificate> cas =
                CertificateFactory.getInstance("X.509").generateCertificates(in);
            int i = 0;
            for (Certificate c : cas) trust.setCertificateEntry("ca" + (i++), c);
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        return tmf.getTrustManagers();
    }

    static KeyManager[] keys(String p12, char[] password) throws Exception {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(p12)) { ks.load(in, password); }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, password);
        return kmf.getKeyManagers();
    }

    static String describe(SSLSession sess) {
        String s = "version=" + sess.getProtocol() + " suite=" + sess.getCipherSuite();
        try {
            Certificate[] peer = sess.getPeerCertificates();
            s += " peer=" + ((X509Certificate) peer[0]).getSubjectX500Principal().getName();
        } catch (SSLPeerUnverifiedException e) {
            // no peer certificate (a server without client authentication)
        }
        return s;
    }

    static void client(int port, String caFile, String suite, String p12, int conns) throws Exception {
        SSLContext ctx = SSLContext.getInstance("TLSv1.3");
        ctx.init(p12.equals("-") ? null : keys(p12, P12_PASSWORD), trust(caFile), null);
        for (int i = 0; i < conns; i++) {
            try (SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket()) {
                s.connect(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), port), 10000);
                s.setSoTimeout(10000);
                s.setEnabledProtocols(PROTOCOLS);
                if (!suite.equals("-")) s.setEnabledCipherSuites(new String[] {suite});
                SSLParameters p = s.getSSLParameters();
                p.setServerNames(java.util.List.of(new SNIHostName("localhost")));
                p.setEndpointIdentificationAlgorithm("HTTPS");  // check the name "localhost"
                s.setSSLParameters(p);
                s.startHandshake();
                System.out.println(describe(s.getSession()));
                OutputStream out = s.getOutputStream();
                out.write("GET / HTTP/1.0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
                out.flush();
                // reading to the end also takes in the NewSessionTicket messages
                InputStream in = s.getInputStream();
                ByteArrayOutputStream body = new ByteArrayOutputStream();
                byte[] buf = new byte[4096];
                int n;
                while ((n = in.read(buf)) > 0) body.write(buf, 0, n);
                System.out.println(body.toString(StandardCharsets.UTF_8));
            }
        }
    }

    static void server(String p12, char[] password, String suite, int conns, String clientCa) throws Exception {
        SSLContext ctx = SSLContext.getInstance("TLSv1.3");
        ctx.init(keys(p12, password), clientCa.equals("-") ? null : trust(clientCa), null);
        try (SSLServerSocket ss = (SSLServerSocket) ctx.getServerSocketFactory()
                .createServerSocket(0, 4, InetAddress.getByName("127.0.0.1"))) {
            ss.setEnabledProtocols(PROTOCOLS);
            if (!suite.equals("-")) ss.setEnabledCipherSuites(new String[] {suite});
            if (!clientCa.equals("-")) ss.setNeedClientAuth(true);
            System.out.println("listening " + ss.getLocalPort());
            System.out.flush();
            for (int i = 0; i < conns; i++) {
                try (SSLSocket s = (SSLSocket) ss.accept()) {
                    s.setSoTimeout(10000);
                    InputStream in = s.getInputStream();
                    ByteArrayOutputStream head = new ByteArrayOutputStream();
                    int b;
                    while ((b = in.read()) >= 0) {
                        head.write(b);
                        if (head.toString(StandardCharsets.ISO_8859_1).endsWith("\r\n\r\n")) break;
                    }
                    String info = describe(s.getSession());
                    System.out.println("served " + info);
                    System.out.flush();
                    String body = "java says hello\n" + info + "\n";
                    OutputStream out = s.getOutputStream();
                    out.write(("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                               + body.length() + "\r\n\r\n" + body).getBytes(StandardCharsets.US_ASCII));
                    out.flush();
                } catch (Exception e) {
                    System.out.println("error " + e);
                    System.out.flush();
                }
            }
        }
    }
}
