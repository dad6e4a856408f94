#!/usr/bin/env bash
# Cross-compile hark for armv7 (32-bit ARM boards: Raspberry Pi 2/3/4 on a
# 32-bit OS) without docker: rustup's armv7 standard library, Debian's
# arm-linux-gnueabihf gcc and the armhf libasound2, then run the result
# under qemu-arm and check it transcribes the sample as the host build does.
# See --help.
set -euo pipefail

TARGET=armv7-unknown-linux-gnueabihf
WAV=tests/data/e2e/e2e-4-flite-rms.wav

NAME=build-armv7-rustup.sh
USAGE="Usage: cross/build-armv7-rustup.sh [--no-install] [--host-bin PATH]

Builds target/$TARGET/release/hark with rustup's $TARGET standard library
(rustup target add), Debian's arm-linux-gnueabihf gcc and libasound2-dev:armhf,
then transcribes $WAV with it under qemu-arm and with a host build and exits 1
if the transcripts differ.

  --no-install    skip rustup target add and the apt step (needs root or sudo)
  --host-bin PATH host hark to compare with; default: cargo build --release"
# shellcheck source=cross/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
parse_args "$@"
enter_repo

if [ "$install" -eq 1 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    rustup target add "$TARGET"
    dpkg --print-foreign-architectures | grep -qx armhf || $sudo dpkg --add-architecture armhf
    # Debian's armhf index has been seen to fail to sync here; what is
    # needed still installs when the package lists it needs arrived.
    $sudo apt-get update -qq || true
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        gcc-arm-linux-gnueabihf libc6-dev-armhf-cross libasound2-dev:armhf pkg-config qemu-user
fi
[ -f /usr/lib/arm-linux-gnueabihf/pkgconfig/alsa.pc ] || die "no armhf alsa.pc: install libasound2-dev:armhf"

export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc
export CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc
export AR_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-ar
export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_LIBDIR_armv7_unknown_linux_gnueabihf=/usr/lib/arm-linux-gnueabihf/pkgconfig:/usr/share/pkgconfig
export PKG_CONFIG_PATH_armv7_unknown_linux_gnueabihf=

echo "== toolchain: $(rustc --version)"
cargo build --release --locked --target "$TARGET"
arm_bin="$repo/target/$TARGET/release/hark"
[ -x "$arm_bin" ] || die "build produced no $arm_bin"
ensure_host_bin "$repo"

compare_transcripts armv7 "$WAV" qemu-arm -L /usr/arm-linux-gnueabihf "$arm_bin"
command -v file >/dev/null 2>&1 && echo "binary: $(file -b "$arm_bin" | cut -d, -f1-2)"
echo "size:   $(stat -c %s "$arm_bin") bytes (stripped by the release profile)"
