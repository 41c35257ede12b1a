"""Real STARTTLS servers for tests/test_scan_starttls.py, from Debian packages when they
are installed: postfix (SMTP), dovecot-imapd/-pop3d (IMAP, POP3), slapd (LDAP) and
postgresql (PostgreSQL).  Each runs in the foreground from a throwaway directory under
/tmp on a loopback port, with the test's throwaway certificate, and is stopped by its
process group.  ``start`` skips the calling test, saying why, when a server is missing.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from conftest import free_port, wait_for_port

BINARIES = {"postfix": ["/usr/sbin/postfix", "/usr/lib/postfix/sbin/master"],
            "dovecot": ["/usr/sbin/dovecot"], "slapd": ["/usr/sbin/slapd"],
            "postgres": ["initdb", "postgres"]}
PACKAGES = {"postfix": "postfix", "dovecot": "dovecot-imapd dovecot-pop3d",
            "slapd": "slapd", "postgres": "postgresql"}


def write_identity(pki, d: Path) -> tuple[Path, Path]:
    chain, key, _ = pki
    (d / "cert.pem").write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in chain))
    (d / "key.pem").write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8,
                                                  NoEncryption()))
    return d / "cert.pem", d / "key.pem"


class RealServers:
    def __init__(self, pki) -> None:
        self.pki = pki
        self.procs: list[subprocess.Popen] = []
        self.dirs: list[Path] = []
        self.started: dict[tuple[str, bool], dict[str, int]] = {}

    def _dir(self) -> tuple[Path, Path, Path]:
        # pytest's tmp dirs are root's and 0700: the servers' own users must get in
        d = Path(tempfile.mkdtemp(prefix="tlslab-starttls-"))
        d.chmod(0o755)
        self.dirs.append(d)
        return (d, *write_identity(self.pki, d))

    def _run(self, cmd: list[str], d: Path, ports: list[int], **kw) -> None:
        proc = subprocess.Popen(cmd, start_new_session=True, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=open(d / "stderr", "wb"),
                                **kw)
        self.procs.append(proc)
        try:
            for port in ports:
                wait_for_port(port, timeout=20, proc=proc)
        except RuntimeError as e:
            pytest.skip(f"{cmd[0]} did not start: {e}; "
                        f"{(d / 'stderr').read_text(errors='replace')[-300:]}")

    def start(self, kind: str, *, tls: bool = True) -> dict[str, int]:
        """Start ``kind``; returns its ports by protocol name."""
        found = [shutil.which(b) for b in BINARIES[kind]]
        if not all(found):
            pytest.skip(f"{kind} is not installed (Debian: apt-get install {PACKAGES[kind]})")
        if os.geteuid() != 0:
            pytest.skip(f"{kind} needs root here (it switches to its own user)")
        if (kind, tls) not in self.started:
            self.started[kind, tls] = getattr(self, "_" + kind)(tls, *found)
        return self.started[kind, tls]

    def _postfix(self, tls: bool, postfix: str, master: str) -> dict[str, int]:
        d, cert, key = self._dir()
        port = free_port()
        (d / "queue").mkdir()
        (d / "data").mkdir()
        shutil.chown(d / "data", "postfix")
        tls_cf = (f"smtpd_tls_cert_file = {cert}\nsmtpd_tls_key_file = {key}\n"
                  f"smtpd_tls_security_level = may\n" if tls else
                  "smtpd_tls_security_level = none\n")
        (d / "main.cf").write_text(
            f"compatibility_level = 3.6\nqueue_directory = {d}/queue\n"
            f"data_directory = {d}/data\nmyhostname = mail.tlslab.test\n"
            f"inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n" + tls_cf)
        services = ["pickup unix n - n 60 1 pickup", "cleanup unix n - n - 0 cleanup",
                    "qmgr unix n - n 300 1 qmgr", "tlsmgr unix - - n 1000? 1 tlsmgr",
                    "rewrite unix - - n - - trivial-rewrite", "bounce unix - - n - 0 bounce",
                    "defer unix - - n - 0 bounce", "trace unix - - n - 0 bounce",
                    "verify unix - - n - 1 verify", "flush unix n - n 1000? 0 flush",
                    "proxymap unix - - n - - proxymap", "anvil unix - - n - 1 anvil",
                    "scache unix - - n - 1 scache"]
        (d / "master.cf").write_text(f"127.0.0.1:{port} inet n - n - - smtpd\n" +
                                     "\n".join(services) + "\n")
        # `postfix check` creates the queue's subdirectories; master -d stays in front
        subprocess.run([postfix, "-c", str(d), "check"], capture_output=True, timeout=30)
        self._run([master, "-c", str(d), "-d"], d, [port])
        return {"smtp": port}

    def _dovecot(self, tls: bool, dovecot: str) -> dict[str, int]:
        d, cert, key = self._dir()
        imap, pop3 = free_port(), free_port()
        ssl = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n" if tls else "ssl = no\n"
        (d / "dovecot.conf").write_text(f"""\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/log
protocols = imap pop3
listen = 127.0.0.1
{ssl}service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
passdb {{
  driver = static
  args = password=unused
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/home
}}
""")
        self._run([dovecot, "-F", "-c", str(d / "dovecot.conf")], d, [imap, pop3])
        return {"imap": imap, "pop3": pop3}

    def _slapd(self, tls: bool, slapd: str) -> dict[str, int]:
        d, cert, key = self._dir()
        port = free_port()
        tls_conf = f"TLSCertificateFile {cert}\nTLSCertificateKeyFile {key}\n" if tls else ""
        (d / "slapd.conf").write_text(f"include /etc/ldap/schema/core.schema\n"
                                      f"pidfile {d}/slapd.pid\nargsfile {d}/slapd.args\n"
                                      + tls_conf)
        # -d: with any debug level slapd stays in the foreground (slapd(8))
        self._run([slapd, "-h", f"ldap://127.0.0.1:{port}/", "-f", str(d / "slapd.conf"),
                   "-d", "0"], d, [port])
        return {"ldap": port}

    def _postgres(self, tls: bool, initdb: str, postgres: str) -> dict[str, int]:
        d, cert, key = self._dir()
        for f in (d, cert, key):
            shutil.chown(f, "postgres", "postgres")
        key.chmod(0o600)  # postgres refuses a key others can read
        done = subprocess.run([initdb, "-D", str(d / "data"), "-A", "trust", "-U", "postgres",
                               "--no-sync"], user="postgres", capture_output=True, timeout=60)
        if done.returncode:
            pytest.skip(f"initdb failed: {done.stderr.decode(errors='replace')[-300:]}")
        port = free_port()
        self._run([postgres, "-D", str(d / "data"), "-p", str(port), "-k", str(d),
                   "-c", "listen_addresses=127.0.0.1", "-c", f"ssl={'on' if tls else 'off'}",
                   "-c", f"ssl_cert_file={cert}", "-c", f"ssl_key_file={key}",
                   "-c", "fsync=off"], d, [port], user="postgres")
        return {"postgres": port}

    def stop(self) -> None:
        for proc in self.procs:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                    proc.wait(timeout=10)
                    break
                except ProcessLookupError:
                    break
                except subprocess.TimeoutExpired:
                    continue
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)
