#!/usr/bin/env bash
# Builds a kernel image for a QEMU guest (rmapbench qemu --kernel) from a
# kernel tree, a variant's config fragment and an optional patch series.
#
#   kernels/build-kernel.sh                                  # stock, Debian's linux-source-6.12
#   kernels/build-kernel.sh --variant anon_vma_lazy --patches ~/lazy-series.mbox
#   kernels/build-kernel.sh --tree ~/linux --variant stock
#   kernels/build-kernel.sh --testing fork-extra-work        # a known-answer kernel (kernels/testing/)
#
# Options:
#   --tree DIR|debian-6.12  kernel source: a tree of your own (built with O=,
#                           never modified unless --patches is given), or
#                           Debian's linux-source-6.12 (default; installed
#                           with apt, unpacked into the cache)
#   --variant NAME          kernels/NAME/config.fragment (stock, anon_vma_lazy);
#                           anon_vma_lazy merges stock's fragment first
#   --patches DIR|MBOX      a patch series: a directory of *.patch (applied in
#                           name order) or an mbox (git am)
#   --testing NAME          the known-answer patches of kernels/testing/NAME/
#                           on top of the stock fragment
#   --out DIR               where the named outputs go (default build-kernels/)
#   --jobs N                make -j (default: nproc)
#
# The config starts small (x86_64_defconfig + kvm_guest.config), then the
# fragments are merged (merge_config.sh) and `make olddefconfig` resolves
# them. A fragment option olddefconfig dropped is an error that names its
# unmet dependency. ccache is used when installed (rebuilds take minutes).
# Output: <out>/<release>/{bzImage, config, modules/lib/modules/<release>},
# where <release> carries the variant and the patches' hash
# (LOCALVERSION), so stock and patched builds never collide; the last line
# printed is the `rmapbench qemu` command that boots it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
prog=build-kernel.sh
die() { echo "$prog: $*" >&2; exit 2; }
info() { echo "$prog: $*" >&2; }

tree=debian-6.12 variant=stock patches="" testing="" out="$top/build-kernels" jobs=$(nproc)
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    --tree | --variant | --patches | --testing | --out | --jobs)
      [ $# -ge 2 ] || die "$1 needs a value"
      case $1 in
        --tree) tree=$2 ;; --variant) variant=$2 ;; --patches) patches=$2 ;; --testing) testing=$2 ;;
        --out) out=$2 ;; --jobs) jobs=$2 ;;
      esac
      shift 2 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[ -f "$top/kernels/$variant/config.fragment" ] || die "no variant '$variant' (kernels/*/config.fragment)"
fragments=("$top/kernels/stock/config.fragment")
[ "$variant" = stock ] || fragments+=("$top/kernels/$variant/config.fragment")
series=()
if [ -n "$testing" ]; then
  [ -d "$top/kernels/testing/$testing" ] || die "no known-answer kernel '$testing' in kernels/testing/"
  [ "$variant" = stock ] || die "--testing builds on the stock variant"
  variant="testing-$testing"
  mapfile -t series < <(find "$top/kernels/testing/$testing" -name '*.patch' | LC_ALL=C sort)
fi
if [ -n "$patches" ]; then
  if [ -d "$patches" ]; then
    mapfile -t more < <(find "$patches" -maxdepth 1 -name '*.patch' | LC_ALL=C sort)
    [ ${#more[@]} -gt 0 ] || die "no *.patch in $patches"
    series+=("${more[@]}")
  elif [ -f "$patches" ]; then
    series+=("$patches")
  else
    die "--patches $patches: no such file or directory"
  fi
fi

cache=${RMAPBENCH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rmapbench}
for tool in make gcc bc bison flex git; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install build-essential bc bison flex libelf-dev libssl-dev git)"
done

# ------------------------------------------------------------ the tree
# A git tree, so a series applies and reverts cleanly and an unchanged file
# keeps its mtime (make rebuilds only what the series touched).
if [ "$tree" = debian-6.12 ]; then
  src="$cache/src/linux-source-6.12"
  if [ ! -d "$src/.git" ]; then
    tarball=/usr/src/linux-source-6.12.tar.xz
    if [ ! -f "$tarball" ]; then
      info "installing linux-source-6.12 (apt)"
      [ "$(id -u)" -eq 0 ] || die "installing linux-source-6.12 needs root (or install it yourself)"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-source-6.12 >/dev/null
    fi
    info "unpacking $tarball into $src (once)"
    rm -rf "$src" && mkdir -p "$cache/src"
    tar -C "$cache/src" -xJf "$tarball"
    git -C "$src" init -q
    git -C "$src" -c user.name=rmapbench -c user.email=rmapbench@localhost add -A -f  # Debian's .gitignore ignores everything
    git -C "$src" -c user.name=rmapbench -c user.email=rmapbench@localhost commit -qm "linux-source-6.12 (Debian)"
    git -C "$src" tag rmapbench-base
  fi
  base_name=debian-6.12
else
  [ -f "$tree/Makefile" ] && [ -d "$tree/mm" ] || die "--tree $tree is not a kernel tree"
  src=$(cd "$tree" && pwd)
  base_name=$(basename "$src")
fi
kernelversion=$(make -s -C "$src" kernelversion)

series_hash=none
if [ ${#series[@]} -gt 0 ]; then
  series_hash=$(cat "${series[@]}" | sha1sum | cut -c1-8)
  git -C "$src" rev-parse --git-dir >/dev/null 2>&1 || die "--patches needs a git tree (git init it first)"
fi
localversion="-rmapbench-$variant"
[ "$series_hash" = none ] || localversion="$localversion-$series_hash"

# Apply the series on a branch of its own; the base tree is put back after.
restore_tree() { :; }
if [ "$tree" = debian-6.12 ]; then
  git -C "$src" checkout -q -f rmapbench-base
  git -C "$src" clean -qfd
fi
if [ ${#series[@]} -gt 0 ]; then
  orig=$(git -C "$src" rev-parse HEAD)
  [ -z "$(git -C "$src" status --porcelain --untracked-files=no)" ] || die "$src has uncommitted changes"
  git -C "$src" checkout -q -B "rmapbench-$variant-$series_hash" "$orig"
  restore_tree() { git -C "$src" am --abort >/dev/null 2>&1 || true; git -C "$src" checkout -q -f "$orig"; }
  trap restore_tree EXIT
  for p in "${series[@]}"; do
    info "applying $(basename "$p")"
    git -C "$src" -c user.name=rmapbench -c user.email=rmapbench@localhost am -q --3way "$p" ||
      die "$(basename "$p") does not apply to $base_name ($kernelversion)"
  done
fi

# ------------------------------------------------------------ config
obj="$cache/obj/$base_name-$(cat "${fragments[@]}" | sha1sum | cut -c1-8)"
mkdir -p "$obj"
export KBUILD_BUILD_USER=rmapbench KBUILD_BUILD_HOST=rmapbench
make_args=(-C "$src" O="$obj" ARCH=x86_64 LOCALVERSION="$localversion" -j"$jobs")
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR="$src" CCACHE_NOHASHDIR=true
  make_args+=(CC="ccache gcc")
fi
info "configuring $kernelversion$localversion (x86_64_defconfig + kvm_guest.config + ${fragments[*]##*/kernels/})"
make "${make_args[@]}" x86_64_defconfig >/dev/null
make "${make_args[@]}" kvm_guest.config >/dev/null
(cd "$obj" && "$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "${fragments[@]}" >/dev/null)
# The release is named by variant and series hash, not by the git commit
# the series made (that would change with every rebuild of the same series).
"$src/scripts/config" --file "$obj/.config" --disable LOCALVERSION_AUTO
make "${make_args[@]}" olddefconfig >/dev/null

# Every option a fragment sets must survive olddefconfig.
dropped=0
while IFS= read -r line; do
  case $line in CONFIG_*=*) ;; *) continue ;; esac
  name=${line%%=*} want=${line#*=}
  have=$(sed -n "s/^$name=//p" "$obj/.config")
  if [ "$have" != "$want" ]; then
    dep=$(grep -rh -A15 "^config ${name#CONFIG_}\$" --include='Kconfig*' "$src" | grep -m1 -E '^\s*depends on' | sed 's/^\s*//')
    echo "$prog: $name=$want was dropped (now '${have:-not set}'): ${dep:-its dependencies are not met}" >&2
    dropped=1
  fi
done < <(cat "${fragments[@]}")
[ "$dropped" = 0 ] || die "the config lost fragment options (see above); fix the base config or the fragment"

# ------------------------------------------------------------ build
start=$(date +%s)
info "building in $obj with -j$jobs$(command -v ccache >/dev/null && echo ', ccache')"
make "${make_args[@]}" bzImage modules > "$obj/build.log" 2>&1 || { tail -30 "$obj/build.log" >&2; die "the build failed (log: $obj/build.log)"; }
release=$(cat "$obj/include/config/kernel.release")
dest="$out/$release"
rm -rf "$dest" && mkdir -p "$dest/modules"
cp "$obj/arch/x86/boot/bzImage" "$dest/bzImage"
cp "$obj/.config" "$dest/config"
make "${make_args[@]}" INSTALL_MOD_PATH="$dest/modules" INSTALL_MOD_STRIP=1 modules_install >/dev/null
[ ${#series[@]} -eq 0 ] || printf '%s\n' "${series[@]}" > "$dest/series"
info "built $release in $(( $(date +%s) - start ))s: $dest"
echo "rmapbench qemu --kernel $dest/bzImage --modules $dest/modules/lib/modules/$release --config $dest/config -- run"
