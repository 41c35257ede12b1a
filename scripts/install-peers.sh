#!/usr/bin/env bash
# Install the real TLS peers that tlslab's interop tests run against (Debian packages).
#
#   scripts/install-peers.sh                 all peers: openssl, curl, tshark, GnuTLS,
#                                            NSS tools, Go, a headless JDK, Node, nginx,
#                                            Chromium (driven headless, with no network)
#   TLSLAB_ALL_PEERS=1 scripts/install-peers.sh   also the optional tier (none at present)
#   scripts/install-peers.sh --python-venv   only python3-venv (used by the Makefile)
#   TLSLAB_SKIP_PEERS=1                      install nothing, just print the table
#
# Idempotent and fast when everything is there: a peer is looked up with `command -v`
# or in /usr/sbin, and apt is touched only when something is missing (`apt-get update`
# at most once).  Never fails the caller: a peer that cannot be installed is reported as
# missing, and the tests that need it skip with that reason.
set -u

# One line per peer: TIER  COMMAND  DEBIAN-PACKAGE  WHAT
# Tier "core" is always installed; "all" only with TLSLAB_ALL_PEERS=1.
# To make a peer part of every run, change its tier to "core".  The JDK is looked up as
# `javac` (a JRE alone has `java` but cannot compile the test's helper programs); any JDK
# already on PATH counts, default-jdk-headless is only what gets installed when none is.
# Measured on Debian bookworm with a nearby mirror: gnutls-bin + libnss3-tools + golang-go
# took 12 s including `apt-get update`, the JDK (about 120 MB of packages) 6 s more; the
# script prints "apt took N s".  When everything is present it takes milliseconds and
# never calls apt.
PEERS="
core  openssl     openssl               OpenSSL s_client/s_server
core  curl        curl                  curl (OpenSSL backend)
core  tshark      tshark                Wireshark dissector (pcap decode checks)
core  gnutls-cli  gnutls-bin            GnuTLS client/server
core  certutil    libnss3-tools         NSS tools (certutil, pk12util)
core  go          golang-go             Go crypto/tls
core  javac       default-jdk-headless  Java JSSE (javac, java, keytool)
core  node        nodejs                Node.js tls
core  nginx       nginx-light           nginx (server-configuration cases of diagnose)
core  chromium    chromium              headless Chromium (the HTML report, tests/test_html_browser.py)
"

# nginx: the tests start their own nginx (own config, 127.0.0.1, a free port).  The Debian
# package would start a system nginx on port 80 (postinst -> invoke-rc.d): while it is
# installed a policy-rc.d that forbids starts (exit 101) is put in place unless one exists,
# and afterwards a system nginx that runs anyway is stopped and disabled.  nginx-light is
# the smallest flavour (Debian bookworm has it); where apt has no candidate for that name,
# plain "nginx" is installed instead.

say() { printf 'install-peers: %s\n' "$*"; }

# command -v, plus the sbin directories a non-root PATH often lacks (nginx is /usr/sbin/nginx)
find_cmd() {
  command -v "$1" 2>/dev/null && return 0
  for d in /usr/sbin /sbin /usr/local/sbin; do
    [ -x "$d/$1" ] && { echo "$d/$1"; return 0; }
  done
  return 1
}

want_all=${TLSLAB_ALL_PEERS:-0}
mode=peers
case "${1:-}" in
  --python-venv) mode=venv ;;
  --all) want_all=1 ;;
  -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
  "") ;;
  *) say "unknown argument '$1' (try --help)"; exit 0 ;;
esac

# --- how to become root ------------------------------------------------------------------
SUDO=""
can_install=1
why_not=""
if [ "${TLSLAB_SKIP_PEERS:-0}" = 1 ]; then
  can_install=0; why_not="TLSLAB_SKIP_PEERS=1"
elif ! command -v apt-get >/dev/null 2>&1; then
  can_install=0; why_not="apt-get not available (not a Debian-like system)"
elif [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  elif command -v sudo >/dev/null 2>&1 && [ -t 0 ]; then
    SUDO="sudo"   # interactive: let sudo ask for the password
  else
    can_install=0; why_not="not root and no usable sudo"
  fi
fi

APT_ENV="DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a"
APT_OPTS="-y -q --no-install-recommends -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
updated=0

apt_update_once() {
  [ "$updated" = 1 ] && return 0
  updated=1
  say "apt-get update"
  # bounded: a stuck mirror must not eat the CI budget
  if ! $SUDO env $APT_ENV timeout 600 apt-get update -q >/tmp/tlslab-apt-update.$$ 2>&1; then
    say "apt-get update failed (continuing with the package lists there are):"
    tail -n 5 /tmp/tlslab-apt-update.$$ | sed 's/^/    /'
  fi
  rm -f /tmp/tlslab-apt-update.$$
}

apt_install() {  # apt_install PKG...  -> 0 if all installed
  $SUDO env $APT_ENV timeout 1800 apt-get install $APT_OPTS "$@" >/tmp/tlslab-apt-install.$$ 2>&1
  local rc=$?
  if [ $rc -ne 0 ]; then
    say "apt-get install $* failed (exit $rc):"
    tail -n 8 /tmp/tlslab-apt-install.$$ | sed 's/^/    /'
  fi
  rm -f /tmp/tlslab-apt-install.$$
  return $rc
}

# --- python3-venv only (Makefile fallback when `python3 -m venv` is not available) --------
if [ "$mode" = venv ]; then
  if [ "$can_install" = 0 ]; then
    say "cannot install python3-venv: $why_not; install it by hand (apt-get install python3-venv)"
    exit 1
  fi
  apt_update_once
  apt_install python3-venv && say "python3-venv installed" && exit 0
  exit 1
fi

# --- peers -------------------------------------------------------------------------------
missing_pkgs=""
while read -r tier cmd pkg what; do
  [ -z "${tier:-}" ] && continue
  [ "$tier" = all ] && [ "$want_all" != 1 ] && continue
  find_cmd "$cmd" >/dev/null 2>&1 || missing_pkgs="$missing_pkgs $pkg"
done <<EOF
$PEERS
EOF

if [ -n "$missing_pkgs" ]; then
  if [ "$can_install" = 0 ]; then
    say "not installing$missing_pkgs: $why_not"
  else
    t0=$SECONDS
    apt_update_once
    case " $missing_pkgs " in
      *" tshark "*)
        # otherwise wireshark-common asks whether non-root users may capture
        echo "wireshark-common wireshark-common/install-setuid boolean false" \
          | $SUDO debconf-set-selections 2>/dev/null || true ;;
    esac
    policy_rc=""
    case " $missing_pkgs " in
      *" nginx-light "*)
        if ! apt-cache policy nginx-light 2>/dev/null | grep -q 'Candidate: [0-9]'; then
          say "no package nginx-light here; installing nginx instead"
          missing_pkgs=$(echo " $missing_pkgs " | sed 's/ nginx-light / nginx /')
        fi
        if [ ! -e /usr/sbin/policy-rc.d ]; then
          policy_rc=/usr/sbin/policy-rc.d
          printf '#!/bin/sh\n# tlslab install-peers.sh: no service starts during this install\nexit 101\n' \
            | $SUDO tee "$policy_rc" >/dev/null && $SUDO chmod 755 "$policy_rc"
          trap '$SUDO rm -f "$policy_rc"' EXIT
        fi ;;
    esac
    say "apt-get install$missing_pkgs"
    # all at once (fast); if that fails, one by one so one bad package spares the others
    if ! apt_install $missing_pkgs && [ "$(echo $missing_pkgs | wc -w)" -gt 1 ]; then
      for p in $missing_pkgs; do
        dpkg -s "$p" >/dev/null 2>&1 || apt_install "$p" || true
      done
    fi
    if [ -n "$policy_rc" ]; then
      $SUDO rm -f "$policy_rc"; trap - EXIT
    fi
    case " $missing_pkgs " in
      *" nginx-light "*|*" nginx "*)
        # Only the nginx this run installed: stop it if the package started one anyway
        # (a policy-rc.d we did not write may allow starts) and keep it from starting at
        # boot; `nginx -s quit` covers a policy that forbids the stop as well.
        if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
          $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
        else
          $SUDO invoke-rc.d nginx stop >/dev/null 2>&1 || true
          $SUDO update-rc.d nginx disable >/dev/null 2>&1 || true
        fi
        if [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
          $SUDO "$(find_cmd nginx)" -s quit >/dev/null 2>&1 || true
        fi ;;
    esac
    say "apt took $((SECONDS - t0)) s"
  fi
fi

# --- summary -----------------------------------------------------------------------------
printf '%-8s %-11s %-21s %s\n' "tier" "peer" "debian package" "status"
n_missing=0
missing_lines=""
while read -r tier cmd pkg what; do
  [ -z "${tier:-}" ] && continue
  if path=$(find_cmd "$cmd"); then
    status="present  $path"
  elif [ "$tier" = all ] && [ "$want_all" != 1 ]; then
    status="not installed (optional: TLSLAB_ALL_PEERS=1) - its tests will skip"
  else
    status="MISSING - tests needing $cmd will skip"
    n_missing=$((n_missing + 1))
    missing_lines="$missing_lines
peer missing: $cmd ($what; Debian package $pkg)"
  fi
  printf '%-8s %-11s %-21s %s\n' "$tier" "$cmd" "$pkg" "$status"
done <<EOF
$PEERS
EOF
if [ "$n_missing" -gt 0 ]; then
  printf '%s\n' "$missing_lines" | sed '/^$/d; s/^/install-peers: /'
  say "$n_missing peer(s) missing; continuing (their tests skip)"
fi
exit 0
