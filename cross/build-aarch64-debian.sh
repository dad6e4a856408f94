#!/usr/bin/env bash
# Cross-compile hark for aarch64 (64-bit ARM boards) on a Debian bookworm
# amd64 machine without docker, using Debian's own Rust toolchain, then run
# the result under qemu and check it transcribes the sample exactly as the
# host build does. See --help.
set -euo pipefail

TARGET=aarch64-unknown-linux-gnu
WAV=tests/data/e2e/e2e-4-flite-rms.wav
PACKAGES=(
    rustc-web cargo-web libstd-rust-web-dev:arm64 # Rust (bookworm-security: 1.96)
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross   # C cross compiler and linker
    libasound2-dev:arm64                          # the target's ALSA, for alsa-sys
    pkg-config qemu-user                          # ... and to run the result
)

NAME=build-aarch64-debian.sh
USAGE="$(
    cat <<EOF
Usage: cross/build-aarch64-debian.sh [--no-install] [--host-bin PATH]

Builds hark for $TARGET with Debian bookworm's Rust packages
(rustc-web, cargo-web; /usr/bin/rustc and /usr/bin/cargo, used explicitly so
that a rustup toolchain on PATH does not get in the way), linking with
aarch64-linux-gnu-gcc against the arm64 libasound2. Output:
  target/aarch64-debian/$TARGET/release/hark

Then transcribes $WAV with it under
\`qemu-aarch64 -L /usr/aarch64-linux-gnu\` (--format tsv) and with a host
build, prints both and the stripped binary's size, and exits 1 if the
transcripts differ.

Options:
  --no-install    skip the apt step (packages already installed)
  --host-bin PATH host hark to compare with; default: \`cargo build --release\`
                  with the cargo on PATH, then target/release/hark
  -h, --help      show this help

The apt step needs root (or sudo) and runs: dpkg --add-architecture arm64,
apt-get update, apt-get install ${PACKAGES[*]}
rustc-web conflicts with Debian's rustc package (not with a rustup install).
The release profile (fat LTO) makes this a long build on a small machine.
The binary links against bookworm's glibc (2.36): boards need Debian 12,
Ubuntu 22.04 or newer; for older ones use cross (Cross.toml).
EOF
)"
# shellcheck source=cross/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
parse_args "$@"
enter_repo

if [ "$install" -eq 1 ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "the apt step needs root (or use --no-install)"
        sudo="sudo"
    fi
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        $sudo dpkg --add-architecture arm64
    fi
    # An index that fails to sync (a mirror mid-update, armhf here once) must
    # not stop the build: what it needs comes from the indexes that did.
    $sudo apt-get update -qq || echo "$NAME: apt-get update reported errors; installing anyway" >&2
    $sudo env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
fi

for tool in /usr/bin/cargo /usr/bin/rustc aarch64-linux-gnu-gcc aarch64-linux-gnu-strip \
    pkg-config qemu-aarch64; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run without --no-install)"
done
[ -d /usr/lib/rustlib/$TARGET ] ||
    die "no Rust standard library for $TARGET: install libstd-rust-web-dev:arm64"
[ -f /usr/lib/aarch64-linux-gnu/pkgconfig/alsa.pc ] ||
    die "no arm64 alsa.pc: install libasound2-dev:arm64"
[ -f "$WAV" ] || die "missing $WAV"

# Debian's toolchain, whatever rustup puts first on PATH.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
unset RUSTC_WRAPPER RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
# Link and compile C for the target with the cross gcc.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
# alsa-sys's build script asks pkg-config for alsa: allow cross use and show
# it only the arm64 .pc files (target-specific variables, so host build
# scripts are unaffected).
export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
export PKG_CONFIG_PATH_aarch64_unknown_linux_gnu=

echo "== toolchain: $(/usr/bin/rustc --version); $(/usr/bin/cargo --version)"
echo "== pkg-config alsa for arm64: $(PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig pkg-config --modversion alsa) ($(PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig pkg-config --libs alsa))"

echo "== building hark for $TARGET (target/aarch64-debian)"
/usr/bin/cargo build --release --locked --target "$TARGET" --target-dir target/aarch64-debian
arm_bin="$repo/target/aarch64-debian/$TARGET/release/hark"
[ -x "$arm_bin" ] || die "build produced no $arm_bin"

ensure_host_bin "$repo"

stripped="$repo/target/aarch64-debian/hark-$TARGET-stripped"
aarch64-linux-gnu-strip -o "$stripped" "$arm_bin"

compare_transcripts aarch64 "$WAV" qemu-aarch64 -L /usr/aarch64-linux-gnu "$arm_bin"
command -v file >/dev/null 2>&1 && echo "binary: $(file -b "$arm_bin" | cut -d, -f1-2)"
echo "size:   $(stat -c %s "$arm_bin") bytes as built, $(stat -c %s "$stripped") bytes stripped ($stripped)"

