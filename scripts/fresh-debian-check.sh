#!/usr/bin/env bash
# Run the README's two commands on a fresh Debian 12, as a new user would:
# a `debootstrap --variant=minbase bookworm` chroot (no git, curl, compiler
# or Rust), a user with sudo and root, each with its own clone of this
# repository's HEAD. Rust comes from Debian 12's rustc-web (the README's
# alternative to rustup, which needs static.rust-lang.org).
#
#   sudo bash scripts/fresh-debian-check.sh DIR [--setup-only]
#
# Needs root, debootstrap, and network to deb.debian.org, crates.io and
# PyPI; about 10 GB in DIR and 1.5-2 hours on 2 cores (two release builds,
# two test runs). Logs: DIR/check-user.log and DIR/check-root.log, each
# ending with "CMD1 rc=N" and "CMD2 rc=N". --setup-only stops after the
# README's one-time set-up ("Once") as the sudo user. Where the network
# intercepts TLS, the host's local CA certificates and /etc/pip.conf are
# copied in. Unmount afterwards: umount DIR/{dev/pts,dev/shm,dev,proc,sys}.
set -euo pipefail
DIR="${1:?usage: fresh-debian-check.sh DIR [--setup-only]}"
SETUP_ONLY="${2:-}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "needs root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "install debootstrap first" >&2; exit 1; }

if [ ! -x "$DIR/bin/bash" ]; then
    debootstrap --variant=minbase bookworm "$DIR" http://deb.debian.org/debian
fi
cat >"$DIR/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
cp /etc/resolv.conf "$DIR/etc/resolv.conf"
grep -q "$(hostname)" "$DIR/etc/hosts" 2>/dev/null || echo "127.0.1.1 $(hostname)" >>"$DIR/etc/hosts"
for m in proc sys dev dev/pts dev/shm; do
    mountpoint -q "$DIR/$m" || mount --bind "/$m" "$DIR/$m"
done
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    mkdir -p "$DIR/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$DIR/usr/local/share/ca-certificates/"
fi
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$DIR/etc/pip.conf"

# What a fresh image with a sudo user has: sudo, and that user.
chroot "$DIR" bash -c 'apt-get update -qq && apt-get install -y -qq sudo ca-certificates >/dev/null && update-ca-certificates >/dev/null'
chroot "$DIR" bash -c 'id newbie >/dev/null 2>&1 || useradd -m -s /bin/bash newbie; echo "newbie ALL=(ALL) NOPASSWD:ALL" >/etc/sudoers.d/newbie'

# This repository's HEAD, as the clone's source (owned by nobody in particular).
rm -rf "$DIR/repo.git"
git clone -q --bare "$REPO" "$DIR/repo.git"
chmod -R a+rX "$DIR/repo.git"
# git (installed later, by the README's set-up) refuses a repository another
# user owns unless it is marked safe
printf '[safe]\n\tdirectory = /repo.git\n' >"$DIR/etc/gitconfig"

# The README's "Once" block (Rust from rustc-web), then commands 1 and 2.
cat >"$DIR/check.sh" <<'EOF'
#!/bin/bash
set -x
cd ~
S=$([ "$(id -u)" -eq 0 ] || echo sudo)
$S apt-get update && $S apt-get install -y build-essential pkg-config libasound2-dev git curl ca-certificates || exit 11
$S apt-get install -y rustc-web cargo-web || exit 12
rm -rf hark && git clone /repo.git hark && cd hark || exit 13
git log --oneline | head -1
[ "${1:-}" = --setup-only ] && { cargo --version; exit 0; }
time cargo run --release -- transcribe tests/data/e2e/e2e-4-flite-rms.wav; echo "CMD1 rc=$?"
time bash scripts/test.sh; echo "CMD2 rc=$?"
du -sh .venv; cat .venv/torch-route
EOF
chmod 755 "$DIR/check.sh"
chroot "$DIR" su - newbie -c "bash /check.sh $SETUP_ONLY" >"$DIR/check-user.log" 2>&1 || true
tail -n 3 "$DIR/check-user.log"
[ -n "$SETUP_ONLY" ] && exit 0
chroot "$DIR" bash -lc "bash /check.sh" >"$DIR/check-root.log" 2>&1 || true
grep -a "rc=" "$DIR/check-user.log" "$DIR/check-root.log"
