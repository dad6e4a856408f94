#!/usr/bin/env bash
# Install what the tests need (Debian/Ubuntu) and run every test:
# the Python training/export tests and the Rust runtime tests.
#
# Needs a Rust toolchain (cargo; README, "The two commands") and, on
# Debian/Ubuntu, root or sudo for the few packages that are missing (only
# those are installed: nothing already there is upgraded). The Python
# packages go into .venv: about 1.7 GB with PyTorch's CPU-only wheel, which
# is taken from PyTorch's own index when that is reachable; otherwise
# PyPI's torch, which brings ~4 GB of CUDA libraries the tests never use.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "scripts/test.sh: $*" >&2; }

# rustup puts cargo in ~/.cargo/bin, which a fresh shell may not have yet
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck source=/dev/null
    . "$HOME/.cargo/env"
fi
if ! command -v cargo >/dev/null 2>&1; then
    say "cargo not found: install Rust 1.91 or newer first (README, \"The two commands\"), then run this again"
    exit 1
fi

if command -v apt-get >/dev/null 2>&1; then
    # What the tests use: the build (C compiler, pkg-config, ALSA headers),
    # python3-venv for .venv, sox (A-law/mu-law WAVs in tests/it),
    # espeak-ng (train/test_make_corpus.py), and systemd-analyze
    # (tests/it/systemd.rs), from `systemd` only when it is missing.
    want=(build-essential pkg-config libasound2-dev python3-venv sox espeak-ng)
    command -v systemd-analyze >/dev/null 2>&1 || want+=(systemd)
    missing=()
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        SUDO=""
        if [ "$(id -u)" != 0 ]; then
            command -v sudo >/dev/null 2>&1 || {
                say "needs root or sudo to install: ${missing[*]}"
                exit 1
            }
            SUDO="sudo"
        fi
        say "installing ${missing[*]}"
        # A foreign architecture whose index fails to sync must not stop
        # the tests: what they need comes from the main index.
        $SUDO apt-get update -qq || say "apt-get update reported errors; installing anyway"
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
pip=(.venv/bin/pip install -q --disable-pip-version-check)
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    torch_req="$(grep -E '^torch==' train/requirements.txt)"
    # The CPU-only wheel (no CUDA libraries); its dependencies come from
    # the usual index with the rest below.
    if "${pip[@]}" --no-deps --retries 1 --timeout 20 \
        --index-url https://download.pytorch.org/whl/cpu "$torch_req" 2>/dev/null; then
        say "installed $torch_req (CPU-only wheel)"
    else
        say "PyTorch's CPU index is not reachable: installing $torch_req from the default index, with its CUDA libraries (~4 GB more)"
    fi
fi
"${pip[@]}" -r train/requirements.txt
say ".venv: $(du -sh .venv | cut -f1)"

echo "== python: fbank, export, text normalization"
.venv/bin/python -m pytest -q train

echo "== rust: runtime"
cargo test --locked 2>&1
