# shellcheck shell=bash
# install and host_bin are set here for the sourcing script:
# shellcheck disable=SC2034
# Shared by the docker-free cross builds in cross/ (sourced, not run).
# The sourcing script sets NAME (its file name, for messages) and USAGE (its
# help text) before calling anything here.

die() {
    echo "$NAME: $*" >&2
    exit 1
}

# parse_args "$@": sets install (1 unless --no-install) and host_bin (the
# value of --host-bin, or empty); --help prints USAGE and exits 0.
parse_args() {
    install=1
    host_bin=""
    while [ $# -gt 0 ]; do
        case "$1" in
        -h | --help)
            echo "$USAGE"
            exit 0
            ;;
        --no-install) install=0 ;;
        --host-bin)
            [ $# -ge 2 ] || die "--host-bin needs a PATH"
            # Absolute: the script changes to the repository root.
            host_bin="$(realpath -m -- "$2")"
            shift
            ;;
        *)
            echo "$USAGE" >&2
            die "unknown argument: $1"
            ;;
        esac
        shift
    done
}

# enter_repo: changes to the repository root and sets repo to it.
enter_repo() {
    cd "$(dirname "${BASH_SOURCE[0]}")/.." || die "cannot enter the repository root"
    repo="$(pwd)"
}

# ensure_host_bin REPO: builds the host release binary with the cargo on
# PATH unless --host-bin named one; sets host_bin.
ensure_host_bin() {
    if [ -z "$host_bin" ]; then
        echo "== building hark for the host"
        (
            unset RUSTC RUSTDOC
            cargo build --release --locked
        )
        host_bin="$1/target/release/hark"
    fi
    [ -x "$host_bin" ] || die "host binary not executable: $host_bin"
}

# compare_transcripts LABEL WAV CMD...: transcribes WAV with CMD (the
# target binary, under qemu) and with the host binary, prints both, and
# dies if they differ.
compare_transcripts() {
    local label="$1" wav="$2" target_out host_out
    shift 2
    echo "== transcribing $wav"
    target_out="$("$@" transcribe --format tsv "$wav")" ||
        die "the $label build failed under qemu (exit $?)"
    host_out="$("$host_bin" transcribe --format tsv "$wav")" ||
        die "the host build failed (exit $?)"
    printf '%-15s %s\n' "$label (qemu):" "$target_out" "host:" "$host_out"
    [ "$target_out" = "$host_out" ] ||
        die "transcripts differ between the $label and host builds"
    echo "== transcripts match"
}
