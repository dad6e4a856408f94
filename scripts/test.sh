#!/usr/bin/env bash
# Install what the tests need (Debian/Ubuntu) and run every test:
# the Python training/export tests and the Rust runtime tests.
#
# Needs a Rust toolchain (cargo; README, "The two commands") and, on
# Debian/Ubuntu, root or sudo for the few packages that are missing (only
# those are installed: nothing already there is upgraded). The Python
# packages go into .venv, with a CPU-only PyTorch where one can be had
# (the routes are below).
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

# apt_install PKG...: install those of PKG that are missing (nothing
# already there is upgraded), as root or through sudo.
apt_updated=""
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    local SUDO=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
            say "needs root or sudo to install: ${missing[*]}"
            exit 1
        }
        SUDO="sudo"
    fi
    say "installing ${missing[*]}"
    if [ -z "$apt_updated" ]; then
        # A foreign architecture whose index fails to sync must not stop
        # the tests: what they need comes from the main index.
        $SUDO apt-get update -qq || say "apt-get update reported errors; installing anyway"
        apt_updated=1
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

if command -v apt-get >/dev/null 2>&1; then
    # What the tests use: the build (C compiler, pkg-config, ALSA headers),
    # python3-venv for .venv, sox (A-law/mu-law WAVs in tests/it),
    # espeak-ng (train/test_make_corpus.py), alsa-utils (a real recording,
    # /usr/share/sounds/alsa/Front_Center.wav, in the Whisper encoder
    # tests), and systemd-analyze (tests/it/systemd.rs), from `systemd`
    # only when it is missing.
    want=(build-essential pkg-config libasound2-dev python3-venv sox espeak-ng alsa-utils)
    command -v systemd-analyze >/dev/null 2>&1 || want+=(systemd)
    apt_install "${want[@]}"
fi

# PyTorch, by the first route that works (written to .venv/torch-route):
#   cpu-index  PyTorch's CPU-only wheel from its own index (~1.7 GB .venv);
#   system     where that index cannot be reached and apt offers
#              python3-torch 1.13 or newer (Debian 12's): the system's torch and numpy
#              in a .venv made with --system-site-packages, with the pins of
#              train/requirements-debian-torch.txt (~0.6 GB of packages and
#              a ~0.8 GB .venv);
#   pypi       otherwise PyPI's torch, with ~4 GB of CUDA libraries the
#              tests never use.
pip=(.venv/bin/pip install -q --disable-pip-version-check)
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    torch_req="$(grep -E '^torch==' train/requirements.txt)"
    [ -d .venv ] && say "recreating .venv: it has no working torch"
    rm -rf .venv
    python3 -m venv .venv
    # The CPU-only wheel (no CUDA libraries); its dependencies come from
    # the usual index with the rest below.
    if "${pip[@]}" --no-deps --retries 1 --timeout 20 \
        --index-url https://download.pytorch.org/whl/cpu "$torch_req" 2>/dev/null; then
        route=cpu-index
        say "installed $torch_req (CPU-only wheel)"
    elif command -v apt-get >/dev/null 2>&1 && [ -x /usr/bin/python3 ] \
        && dpkg --compare-versions "$(apt-cache policy python3-torch 2>/dev/null \
            | sed -nE 's/^ *Candidate: ([0-9].*)/\1/p')" ge 1.13; then
        route=system
        say "PyTorch's CPU index is not reachable: using the system's python3-torch"
        # Debian's torch does its matrix products through libblas.so.3: the
        # reference BLAS unless an optimized one is installed (OpenBLAS:
        # 2.3 -> 111 GFLOP/s measured for a 256x384x768 product, 2 threads).
        apt_install python3-torch libopenblas0-pthread
        rm -rf .venv
        /usr/bin/python3 -m venv --system-site-packages .venv
    else
        route=pypi
        say "PyTorch's CPU index is not reachable: installing $torch_req from the default index, with its CUDA libraries (~4 GB more)"
    fi
    echo "$route" >.venv/torch-route
fi
if [ "$(cat .venv/torch-route 2>/dev/null)" = system ]; then
    # requirements.txt less what requirements-debian-torch.txt replaces
    # (and torch, which is the system's)
    replaced="$(sed -nE 's/^([A-Za-z0-9_.-]+).*/\1/p' train/requirements-debian-torch.txt | paste -sd'|')"
    grep -viE "^(torch|$replaced)([=<>~! ]|$)" train/requirements.txt >.venv/requirements-system-torch.txt
    "${pip[@]}" -r .venv/requirements-system-torch.txt -r train/requirements-debian-torch.txt
else
    "${pip[@]}" -r train/requirements.txt
fi
say ".venv: $(du -sh .venv | cut -f1)"

echo "== python: fbank, export, text normalization"
.venv/bin/python -m pytest -q train

echo "== rust: runtime"
cargo test --locked 2>&1
