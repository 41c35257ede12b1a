// DiagServer: a JSSE TLS server configured the way a Java service is, for tlslab's
// diagnosis tests (tests/realservers.py java_server()).
//
//   java DiagServer KEYSTORE_P12 PASSWORD PROTOCOLS SUITES GROUPS CLIENT_AUTH TRUST_PEM SECONDS
//
//   PROTOCOLS    comma list for setEnabledProtocols ("TLSv1.3,TLSv1.2")
//   SUITES       comma list of IANA names for setEnabledCipherSuites, or "-" (JDK default)
//   GROUPS       comma list for the jdk.tls.namedGroups system property, or "-"
//   CLIENT_AUTH  none | want | need   (setWantClientAuth / setNeedClientAuth)
//   TRUST_PEM    PEM file of CAs trusted for client certificates, or "-" (JDK cacerts)
//   SECONDS      watchdog: the JVM exits after this long whatever happens
//
// Listens on 127.0.0.1 only (port chosen by the system), prints "listening PORT", then
// serves connections until killed: each on its own thread, a 10 s read timeout, an
// HTTP/1.0 request answered with "java says hello" and the negotiated parameters.  A
// failed handshake prints "error " + the exception (what JSSE thinks went wrong).
import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.Collection;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSession;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;

public class DiagServer {
    public static void main(String[] args) throws Exception {
        if (args.length != 8) {
            System.err.println("usage: DiagServer KEYSTORE PASSWORD PROTOCOLS SUITES GROUPS "
                               + "none|want|need TRUST_PEM|- SECONDS");
            System.exit(2);
        }
        final long seconds = Long.parseLong(args[7]);
        Thread watchdog = new Thread(() -> {
            try { Thread.sleep(seconds * 1000); } catch (InterruptedException e) { return; }
            System.out.println("DiagServer: watchdog expired after " + seconds + " s");
            System.out.flush();
            System.exit(3);
        });
        watchdog.setDaemon(true);
        watchdog.start();

        // Read when JSSE initialises its groups, so it must be set before any SSLContext.
        if (!args[4].equals("-")) System.setProperty("jdk.tls.namedGroups", args[4]);

        char[] password = args[1].toCharArray();
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = new FileInputStream(args[0])) { ks.load(in, password); }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, password);
        TrustManager[] tms = null;
        if (!args[6].equals("-")) {
            KeyStore trust = KeyStore.getInstance("PKCS12");
            trust.load(null, null);
            try (InputStream in = new FileInputStream(args[6])) {
                Collection<? extends Certificate> cas =
                    CertificateFactory.getInstance("X.509").generateCertificates(in);
                int i = 0;
                for (Certificate c : cas) trust.setCertificateEntry("ca" + (i++), c);
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(trust);
            tms = tmf.getTrustManagers();
        }
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), tms, null);

        SSLServerSocket ss = (SSLServerSocket) ctx.getServerSocketFactory()
            .createServerSocket(0, 16, InetAddress.getByName("127.0.0.1"));
        ss.setEnabledProtocols(args[2].split(","));
        if (!args[3].equals("-")) ss.setEnabledCipherSuites(args[3].split(","));
        if (args[5].equals("need")) ss.setNeedClientAuth(true);
        else if (args[5].equals("want")) ss.setWantClientAuth(true);
        System.out.println("listening " + ss.getLocalPort());
        System.out.println("protocols " + String.join(",", ss.getEnabledProtocols()));
        System.out.flush();
        while (true) {
            final Socket s = ss.accept();
            Thread t = new Thread(() -> serve((SSLSocket) s));
            t.setDaemon(true);
            t.start();
        }
    }

    static void serve(SSLSocket s) {
        try (SSLSocket sock = s) {
            sock.setSoTimeout(10000);
            sock.startHandshake();
            SSLSession sess = sock.getSession();
            String info = "version=" + sess.getProtocol() + " suite=" + sess.getCipherSuite();
            System.out.println("handshake " + info);
            System.out.flush();
            InputStream in = sock.getInputStream();
            ByteArrayOutputStream head = new ByteArrayOutputStream();
            int b;
            while (head.size() < 8192 && (b = in.read()) >= 0) {
                head.write(b);
                if (head.toString(StandardCharsets.ISO_8859_1).endsWith("\r\n\r\n")) break;
            }
            String body = "java says hello\n" + info + "\n";
            OutputStream out = sock.getOutputStream();
            out.write(("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                       + body.length() + "\r\n\r\n" + body).getBytes(StandardCharsets.US_ASCII));
            out.flush();
            System.out.println("served " + info);
        } catch (Exception e) {
            System.out.println("error " + e);
        }
        System.out.flush();
    }
}
