#!/usr/bin/env bash
# Install hark as a systemd service on this machine (see --help).
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: sudo scripts/install.sh [--no-start] [--gpu] BINARY
       sudo scripts/install.sh --no-service BINARY

Install the hark binary BINARY (e.g. target/release/hark, or
target/aarch64-unknown-linux-gnu/release/hark copied to the board) as a
systemd service:

  BINARY                -> /usr/local/bin/hark
  systemd/hark.service  -> /etc/systemd/system/hark.service
  systemd/hark.env      -> /etc/default/hark   (only if it does not exist yet:
                                                your settings are kept)
  systemd/hark-gpu.conf -> /etc/systemd/system/hark.service.d/gpu.conf
                           (with --gpu only)

then `systemctl daemon-reload`, enable the service at boot, (re)start it and
show `systemctl status hark`. Set the capture device in /etc/default/hark
(HARK_DEVICE; `hark devices` lists them) and `systemctl restart hark`.
Transcripts: `journalctl -u hark -f -o cat`.

Options:
  --no-service install the binary as /usr/local/bin/hark and nothing else
               (no systemd needed); for your user alone, without root:
               `cargo install --locked --path .` (~/.cargo/bin/hark)
  --no-start   install and enable, but do not start or restart the service
  --gpu        also install the GPU drop-in, which lets the service reach an
               NVIDIA GPU (Jetson or PC card); for a binary built with
               `--features cuda` (CUDA 12.6) or `--features cuda13`. The
               CUDA path ran on a GPU, not yet under this drop-in (docs/gpu.md).
  -h, --help   show this help

Must run as root.
EOF
}

die() {
    echo "install.sh: $*" >&2
    exit 1
}

start=1
gpu=0
service=1
bin=""
while [ $# -gt 0 ]; do
    case "$1" in
    -h | --help)
        usage
        exit 0
        ;;
    --no-start)
        start=0
        ;;
    --no-service)
        service=0
        ;;
    --gpu)
        gpu=1
        ;;
    --)
        shift
        break
        ;;
    -*)
        usage >&2
        die "unknown option: $1"
        ;;
    *)
        [ -z "$bin" ] || die "one BINARY only (got '$bin' and '$1')"
        bin="$1"
        ;;
    esac
    shift
done
if [ $# -gt 0 ]; then
    if [ -n "$bin" ] || [ $# -gt 1 ]; then
        die "one BINARY only"
    fi
    bin="$1"
fi
[ -n "$bin" ] || {
    usage >&2
    die "no BINARY given"
}

[ "$service" -eq 1 ] || [ "$gpu" -eq 0 ] || die "--gpu is for the service; not with --no-service"
[ "$(id -u)" -eq 0 ] || die "must run as root: sudo $0 $bin"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
unit="$here/systemd/hark.service"
envfile="$here/systemd/hark.env"
[ -f "$unit" ] || die "missing $unit"
[ -f "$envfile" ] || die "missing $envfile"
gpuconf="$here/systemd/hark-gpu.conf"
[ "$gpu" -eq 0 ] || [ -f "$gpuconf" ] || die "missing $gpuconf"

[ -f "$bin" ] || die "no such file: $bin"
[ -x "$bin" ] || die "not executable: $bin"
# Catches a binary built for another architecture before it is installed.
version="$("$bin" --version 2>&1)" || die "$bin does not run here: $version"

if [ "$service" -eq 0 ]; then
    install -D -m 0755 "$bin" /usr/local/bin/hark
    echo "installed $version as /usr/local/bin/hark"
    exit 0
fi

command -v systemctl >/dev/null 2>&1 || die "systemctl not found: this needs systemd (or use --no-service)"
[ -d /run/systemd/system ] || die "systemd is not running on this machine (PID 1)"
getent group audio >/dev/null ||
    echo "install.sh: warning: no 'audio' group; the service may not be able to open /dev/snd" >&2

echo "installing $version"
install -D -m 0755 "$bin" /usr/local/bin/hark
install -D -m 0644 "$unit" /etc/systemd/system/hark.service
if [ "$gpu" -eq 1 ]; then
    install -D -m 0644 "$gpuconf" /etc/systemd/system/hark.service.d/gpu.conf
    echo "installed the GPU drop-in /etc/systemd/system/hark.service.d/gpu.conf"
fi
if [ -e /etc/default/hark ]; then
    echo "keeping existing /etc/default/hark (defaults: $envfile)"
else
    install -D -m 0644 "$envfile" /etc/default/hark
    echo "installed /etc/default/hark (HARK_DEVICE=default; edit it to pick a device)"
fi

systemctl daemon-reload
if [ "$start" -eq 0 ]; then
    systemctl enable hark.service
    echo "enabled; start with: systemctl start hark"
    exit 0
fi

if systemctl is-active --quiet hark.service; then
    # Already running: restart it so the new binary and unit take effect.
    systemctl enable hark.service
    systemctl restart hark.service || true
else
    # Type=notify: this waits until hark reports ready (model loaded,
    # device open) or fails.
    systemctl enable --now hark.service || true
fi

systemctl --no-pager --full status hark.service || true
if ! systemctl is-active --quiet hark.service; then
    echo >&2
    die "hark.service is not running; see: journalctl -u hark -e"
fi
echo
echo "hark is running. Transcripts: journalctl -u hark -f -o cat"
