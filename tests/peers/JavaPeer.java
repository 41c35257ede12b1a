// JavaPeer: a JSSE client or server for tlslab's TLS 1.2 interop tests.
//
//   java JavaPeer client PORT CA_PEM SUITE          connect to 127.0.0.1:PORT, verify the
//        chain against CA_PEM for "localhost", send an HTTP/1.0 GET, print the response
//   java JavaPeer server KEYSTORE_P12 PASSWORD SUITE CONNS
//        listen on 127.0.0.1 (port chosen by the system), print "listening PORT",
//        answer CONNS connections with a small HTTP response, then exit
//
// SUITE is an IANA cipher suite name ("-" for the JDK's defaults); TLS 1.2 only.
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
import java.util.Collection;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSession;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

public class JavaPeer {
    static final String[] PROTOCOLS = {"TLSv1.2"};

    public static void main(String[] args) throws Exception {
        Thread watchdog = new Thread(() -> {
            try { Thread.sleep(15000); } catch (InterruptedException e) { return; }
            System.err.println("JavaPeer: timed out");
            System.exit(3);
        });
        watchdog.setDaemon(true);
        watchdog.start();
        if (args[0].equals("client")) {
            client(Integer.parseInt(args[1]), args[2], args[3]);
        } else {
            server(args[1], args[2].toCharArray(), args[3], Integer.parseInt(args[4]));
        }
        System.out.flush();
        System.exit(0);
    }

    static void client(int port, String caFile, String suite) throws Exception {
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
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, tmf.getTrustManagers(), null);
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
            SSLSession sess = s.getSession();
            System.out.println("version=" + sess.getProtocol() + " suite=" + sess.getCipherSuite());
            OutputStream out = s.getOutputStream();
            out.write("GET / HTTP/1.0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = s.getInputStream();
            ByteArrayOutputStream body = new ByteArrayOutputStream();
            byte[] buf = new byte[4096];
            int n;
            while ((n = in.read(buf)) > 0) body.write(buf, 0, n);
            System.out.print(body.toString(StandardCharsets.UTF_8));
        }
    }

    static void server(String p12, char[] password, String suite, int conns) throws Exception {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(p12)) { ks.load(in, password); }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, password);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), null, null);
        try (SSLServerSocket ss = (SSLServerSocket) ctx.getServerSocketFactory()
                .createServerSocket(0, 4, InetAddress.getByName("127.0.0.1"))) {
            ss.setEnabledProtocols(PROTOCOLS);
            if (!suite.equals("-")) ss.setEnabledCipherSuites(new String[] {suite});
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
                    SSLSession sess = s.getSession();
                    String info = "version=" + sess.getProtocol() + " suite=" + sess.getCipherSuite();
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
