#!/usr/bin/env bash
# Installs the Debian 12 packages rmapbench needs, only those missing.
# Needs root (or sudo) when something is missing; does nothing otherwise.
#   --qemu   also what the QEMU test hosts need (runners/qemu): QEMU,
#            cpio, xz; the guest kernels and busybox are fetched by the
#            runner itself with apt-get download, never installed.
#   --arm64  also the aarch64 cross toolchain, the :arm64 libraries and
#            qemu-user-static (runners/cross/build-arm64.sh).
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ccache
  libbenchmark-dev libgtest-dev googletest
  libnuma-dev libhwloc-dev libfmt-dev nlohmann-json3-dev zlib1g-dev libcli11-dev
  gnuplot-nox util-linux
  clang libclang-rt-dev   # libFuzzer targets and the sanitizer build
)

for arg in "$@"; do
  case $arg in
    --qemu) packages+=(qemu-system-x86 qemu-system-arm cpio xz-utils) ;;
    --arm64)
      # The cross toolchain and the :arm64 libraries (multiarch; installing
      # them may upgrade the matching amd64 packages to the same version).
      # (apt-get update below runs whenever something is missing.)
      if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        if [ "$(id -u)" -eq 0 ]; then dpkg --add-architecture arm64; else sudo dpkg --add-architecture arm64; fi
      fi
      packages+=(g++-aarch64-linux-gnu binutils-aarch64-linux-gnu qemu-user-static
                 libbenchmark-dev:arm64 libgtest-dev:arm64 libnuma-dev:arm64 libhwloc-dev:arm64
                 libfmt-dev:arm64 zlib1g-dev:arm64) ;;
    *) echo "install-deps.sh: unknown option '$arg' (--qemu, --arm64)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "rmapbench: installing ${missing[*]}" >&2
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
