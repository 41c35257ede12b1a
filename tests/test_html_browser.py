"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``, installed by
scripts/install-peers.sh like the other peers), driven through the DevTools protocol.

The pages come from ``tlslab connect --html`` against a tlslab server on 127.0.0.1 and from
``tlslab demo --html``.  Each test checks the DOM (every message of the trace is on the
page; expanding a message shows its fields; hovering a field lights up its bytes, and
hovering the bytes lights up the field), and saves a screenshot as a test artefact under
pytest's tmp dir (the path is printed: ``pytest -s`` shows it).

Why the DevTools protocol and not Playwright or Selenium: Playwright downloads its own
browser builds, which these machines cannot fetch; Selenium needs chromedriver as a second
binary.  The protocol is what both use underneath, Debian's ``chromium`` speaks it, and the
only dependency is ``websocket-client`` (Apache-2.0).  The browser runs with no network:
background services off, a proxy that goes nowhere, a resolver that finds nothing, a fresh
profile; every step is bounded in time.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import run_bounded
from cryptography.hazmat.primitives.serialization import Encoding
from typer.testing import CliRunner

import tlslab
from tlslab.cli.main import app, http_handler
from tlslab.io.blocking import make_server
from tlslab.workbench.certgen import make_throwaway_chain


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")

#: flags that keep Chromium off the network and quiet (see README "Testing")
OFFLINE_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
    "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class CDPError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, executable: str, *, timeout: float = 30.0, width: int = 1280,
                 height: int = 900) -> None:
        import websocket  # websocket-client

        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="tlslab-chromium-")
        self.proc = subprocess.Popen(
            [executable, *OFFLINE_FLAGS, f"--user-data-dir={self.profile}",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            port = self._devtools_port()
            page = self._page_target(port)
            self.ws = websocket.create_connection(page, timeout=timeout, suppress_origin=True)
            self._id = 0
            self._events: list[dict] = []
            self.call("Page.enable")
            self.call("Runtime.enable")
            self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                      deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.close()
            raise

    # -- set-up -------------------------------------------------------------------------
    def _devtools_port(self) -> int:
        marker = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode("utf-8", "replace")[-2000:]
                raise CDPError(f"chromium exited with {self.proc.returncode}: {err}")
            if marker.exists():
                text = marker.read_text().split()
                if text:
                    return int(text[0])
            time.sleep(0.05)
        raise CDPError(f"chromium did not open its DevTools port within {self.timeout:g} s")

    def _page_target(self, port: int) -> str:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            with opener.open(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                targets = json.loads(r.read())
            for t in targets:
                if t.get("type") == "page" and t.get("webSocketDebuggerUrl"):
                    return t["webSocketDebuggerUrl"]
            time.sleep(0.1)
        raise CDPError("no page target in chromium")

    # -- protocol -----------------------------------------------------------------------
    def call(self, method: str, **params):
        self._id += 1
        my_id = self._id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise CDPError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self._events.append(msg)
        raise CDPError(f"{method}: no answer within {self.timeout:g} s")

    def wait_event(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for i, ev in enumerate(self._events):
                if ev["method"] == method:
                    return self._events.pop(i)
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self._events.append(msg)
        raise CDPError(f"no {method} within {self.timeout:g} s")

    # -- what the tests use ---------------------------------------------------------------
    def open(self, path: str | os.PathLike) -> None:
        self._events.clear()
        self.call("Page.navigate", url=Path(path).resolve().as_uri())
        self.wait_event("Page.loadEventFired")

    def js(self, expression: str):
        """Evaluate ``expression`` in the page; its value (JSON-able)."""
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise CDPError(f"script failed: {r['exceptionDetails'].get('text')} "
                           f"{r['exceptionDetails'].get('exception', {}).get('description', '')}")
        return r.get("result", {}).get("value")

    def center(self, selector: str) -> tuple[float, float]:
        """Scroll the element into view; its centre in viewport coordinates."""
        box = self.js(f"""(function(){{var el=document.querySelector({json.dumps(selector)});
            if(!el) return null; el.scrollIntoView({{block:'center'}});
            var r=el.getClientRects()[0]||el.getBoundingClientRect();
            return [r.left+Math.min(r.width/2,6), r.top+r.height/2];}})()""")
        if not box:
            raise CDPError(f"no element {selector}")
        return box[0], box[1]

    def hover(self, selector: str) -> None:
        """A real mouse move onto the element (the page sees mouseover)."""
        x, y = self.center(selector)
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)

    def click(self, selector: str) -> None:
        x, y = self.center(selector)
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, path: str | os.PathLike, *, full_page: bool = False) -> Path:
        params = {"format": "png"}
        if full_page:
            size = self.js("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size[0], "height": min(size[1], 16000),
                                "scale": 1})
        data = self.call("Page.captureScreenshot", **params)["data"]
        out = Path(path)
        out.write_bytes(base64.b64decode(data))
        return out

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, ProcessLookupError, PermissionError):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                self.proc.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def browser():
    exe = find_chromium()
    if exe is None:
        pytest.skip("peer missing: chromium (Debian package chromium; scripts/install-peers.sh "
                    "installs it)")
    pytest.importorskip("websocket", reason="websocket-client is not installed (pip install -e '.[test]')")
    with Browser(exe) as b:
        yield b


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    chain, key, ca = make_throwaway_chain(names=["localhost", "127.0.0.1"])
    ca_path = tmp_path_factory.mktemp("browser") / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(Encoding.PEM))
    srv = make_server("127.0.0.1", 0, tlslab.ServerConfig(certificate_chain=chain, private_key=key,
                                                          alpn_protocols=["http/1.1"]),
                      http_handler, log=lambda line: None, handshake_timeout=5, io_timeout=5)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv.port, str(ca_path)
    srv.shutdown()
    srv.server_close()
    t.join(5)


def _artefact(b: Browser, tmp_path, name: str, *, full_page: bool = False) -> Path:
    path = b.screenshot(tmp_path / name, full_page=full_page)
    assert path.stat().st_size > 10_000  # a real picture, not an empty page
    print(f"\nscreenshot: {path}")
    return path


def _message_names(b: Browser) -> list[str]:
    return b.js("Array.from(document.querySelectorAll('#conn0 section.card.msg'))"
                ".map(function(s){return s.getAttribute('data-message');})")


def _tree_id(b: Browser, card: str, field: str) -> str:
    """The data-f id of the first tree entry of ``field`` in message card ``card``."""
    fid = b.js(f"""(function(){{var spans=document.querySelectorAll('#{card} ul.tree span[data-f]');
        for(var i=0;i<spans.length;i++){{var t=spans[i].getAttribute('title')||'';
          if(t.indexOf({json.dumps(field)}+' ')===0||t.indexOf({json.dumps(field)}+'  ')===0)
            return spans[i].getAttribute('data-f');}} return null;}})()""")
    assert fid, f"no field {field} in {card}"
    return fid


def _lit(b: Browser, selector: str) -> bool:
    return b.js(f"document.querySelector({json.dumps(selector)}).classList.contains('hl')")


# --------------------------------------------------------------------------- tests

def test_connect_page_in_chromium(browser, served, tmp_path):
    port, ca = served
    page = tmp_path / "connect.html"
    result = CliRunner().invoke(app, ["connect", f"127.0.0.1:{port}", "--ca-file", ca,
                                      "--servername", "localhost", "--alpn", "http/1.1",
                                      "--html", str(page), "--json", "--timeout", "5"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    b = browser
    b.open(page)

    # every message of the trace is on the page, in order, and the script runs (CSP hashes)
    assert _message_names(b) == [m["name"] for m in doc["messages"]]
    assert b.js("document.getElementById('status').textContent").strip()
    assert b.js("document.querySelectorAll('#sequence line.c2s').length") >= 2
    assert b.js("document.querySelectorAll('#sequence text.rtt').length") == 1  # TLS 1.3: 1-RTT
    assert b.js("document.querySelectorAll('#keyschedule ~ table.ks td.secret').length") >= 6

    # expanding the ClientHello shows its fields
    card = b.js("document.querySelector('section.card.msg[data-message=ClientHello]').id")
    assert not b.js(f"document.querySelector('#{card} details.raw').open")
    assert not b.js(f"document.querySelector('#{card} ul.tree').checkVisibility()")
    b.click(f"#{card} details.raw > summary")
    assert b.js(f"document.querySelector('#{card} details.raw').open")
    assert b.js(f"document.querySelector('#{card} ul.tree').checkVisibility()")
    assert b.js(f"document.querySelector('#{card} ul.tree').getBoundingClientRect().height") > 200
    tree_text = b.js(f"document.querySelector('#{card} ul.tree').innerText")
    for field in ("legacy_version", "random", "cipher_suites", "key_share", "server_name"):
        assert field in tree_text

    # hovering a field in the tree lights up its bytes in the hex view ...
    suites = _tree_id(b, card, "cipher_suites")
    b.hover(f'#{card} ul.tree span[data-f="{suites}"]')
    assert _lit(b, f'#{card} .hex span[data-f="{suites}"]')
    assert b.js("document.getElementById('status').textContent").startswith("cipher_suites")
    # ... and hovering the bytes lights up the field (and nothing else stays lit)
    rnd = _tree_id(b, card, "random")
    b.hover(f'#{card} .hex span[data-f="{rnd}"]')
    assert _lit(b, f'#{card} ul.tree span[data-f="{rnd}"]')
    assert not _lit(b, f'#{card} .hex span[data-f="{suites}"]')
    assert b.js("document.getElementById('status').textContent").startswith("random")

    # a long value (the ML-KEM key share when there is one) is folded and unfolds on click
    if b.js(f"document.querySelectorAll('#{card} .hex button.unfold').length"):
        fold = f"#{card} .hex button.unfold"
        assert b.js(f"document.querySelector('{fold}').nextSibling === null || true")
        assert b.js(f"getComputedStyle(document.querySelector('{fold}').previousElementSibling).display") == "none"
        b.click(fold)
        assert b.js(f"document.querySelector('#{card} .hex .open > .fold') !== null")
        assert b.js(f"getComputedStyle(document.querySelector('#{card} .hex .open > .fold')).display") == "inline"
    b.hover(f"#{card} .hex span[data-f=\"{suites}\"]")
    _artefact(b, tmp_path, "connect-clienthello.png")
    b.js("window.scrollTo(0,0)")
    _artefact(b, tmp_path, "connect-top.png")


def test_demo_page_in_chromium(browser, tmp_path):
    page = tmp_path / "demo.html"
    result = CliRunner().invoke(app, ["demo", "--handshake-only", "--html", str(page)])
    assert result.exit_code == 0, result.output
    b = browser
    b.open(page)
    names = _message_names(b)
    for name in ("ClientHello", "ServerHello", "EncryptedExtensions", "Certificate",
                 "CertificateVerify", "Finished"):
        assert name in names
    assert names.count("Finished") == 2
    # the server's Certificate card expands into its fields, hovering lights its bytes
    card = b.js("document.querySelector('section.card.msg[data-message=Certificate]').id")
    b.click(f"#{card} details.raw > summary")
    fid = _tree_id(b, card, "certificate_list")
    b.hover(f'#{card} ul.tree span[data-f="{fid}"]')
    assert _lit(b, f'#{card} .hex span[data-f="{fid}"]')
    assert "handshake complete" in b.js("document.querySelector('.result').textContent")
    _artefact(b, tmp_path, "demo-full.png", full_page=True)


def test_failed_and_insecure_pages_in_chromium(browser, served, tmp_path):
    port, ca = served
    failed = tmp_path / "failed.html"
    rc, out, err = run_bounded([sys.executable, "-m", "tlslab", "connect", f"127.0.0.1:{port}",
                                "--ca-file", ca, "--servername", "wrong.example", "--html",
                                str(failed), "--timeout", "5"], timeout=60)
    assert rc == 1, err
    b = browser
    b.open(failed)
    assert "handshake failed" in b.js("document.querySelector('.result').textContent")
    box = b.js("document.getElementById('failure').innerText")
    assert "after Certificate" in box and "hostname" in box.lower()
    assert b.js("document.getElementById('failure').offsetHeight") > 40
    assert b.js("document.querySelectorAll('#sequence line.bad').length") == 1
    assert b.js("document.querySelector('section.card.alert .name').textContent") == "Alert: bad_certificate"
    _artefact(b, tmp_path, "failed.png")

    insecure = tmp_path / "insecure.html"
    result = CliRunner().invoke(app, ["connect", f"127.0.0.1:{port}", "--insecure",
                                      "--html", str(insecure), "--timeout", "5"])
    assert result.exit_code == 0, result.output
    b.open(insecure)
    banner = b.js("document.getElementById('insecure').innerText")
    assert "NOT verified" in banner and "would have failed" in banner
    assert b.js("document.getElementById('insecure').offsetHeight") > 20
    _artefact(b, tmp_path, "insecure.png")
