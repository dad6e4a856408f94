#!/usr/bin/env bash
# Install what the tests need (Debian/Ubuntu) and run every test:
# the Python training/export tests and the Rust runtime tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    # A foreign architecture whose index fails to sync (armhf has, here)
    # must not stop the tests: what they need comes from the main index.
    $SUDO apt-get update -qq || echo "scripts/test.sh: apt-get update reported errors; installing anyway" >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        build-essential pkg-config libasound2-dev libasound2-plugins alsa-utils sox python3-venv systemd >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -r train/requirements.txt

echo "== python: fbank, export, text normalization"
.venv/bin/python -m pytest -q train

echo "== rust: runtime"
cargo test --locked 2>&1
