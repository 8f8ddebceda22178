# shellcheck shell=bash
# Shared helpers of scripts/kernel-test and scripts/vm/*: messages, apt, and
# the Debian kernels (headers to build against, a vmlinux to boot).
# Sourced, not run. Everything it downloads or unpacks lives under $VM_CACHE,
# keyed by kernel version, so a second run downloads nothing.

REPO=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
VM_CACHE=${ARCHANGEL_VM_CACHE:-$REPO/vm-cache}

say() { printf '== %s\n' "$*"; }
note() { printf '   %s\n' "$*"; }
warn() { printf 'kernel-test: warning: %s\n' "$*" >&2; }
die() { printf 'kernel-test: error: %s\n' "$*" >&2; exit 1; }

# apt_ensure PKG...: installs the packages that are not installed yet.
# `apt-get update` runs once per call that has something to install.
apt_ensure() {
    local missing=() pkg
    for pkg in "$@"; do
        if [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null) != ii* ]]; then
            missing+=("$pkg")
        fi
    done
    ((${#missing[@]})) || return 0
    [[ $(id -u) == 0 ]] || die "needs root to install: ${missing[*]}"
    say "installing ${missing[*]}"
    apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
}

# apt_candidate PKG: the version apt would install.
apt_candidate() {
    apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2; exit }'
}

# apt_fetch DIR PKG=VERSION...: downloads the .debs into DIR (once).
apt_fetch() {
    local dir=$1 spec name ver file
    shift
    mkdir -p "$dir"
    for spec in "$@"; do
        name=${spec%%=*} ver=${spec#*=}
        file=$dir/${name}_${ver//:/%3a}_$(deb_arch "$name" "$ver").deb
        [[ -s $file ]] && continue
        note "downloading $name $ver"
        (cd "$dir" && apt-get download -qq "$name=$ver" >/dev/null 2>&1) || {
            apt-get update -qq && (cd "$dir" && apt-get download -qq "$name=$ver" >/dev/null)
        } || die "apt-get download $name=$ver failed"
        [[ -s $file ]] || file=$(ls "$dir/${name}_"*.deb 2>/dev/null | head -n1)
        [[ -s $file ]] || die "apt-get download $name=$ver left no .deb in $dir"
    done
}

deb_arch() {
    apt-cache show "$1=$2" 2>/dev/null | awk '/^Architecture:/ { print $2; exit }'
}

# deb_path DIR PKG: the downloaded .deb of PKG in DIR.
deb_path() {
    local f
    f=$(ls "$1/${2}_"*.deb 2>/dev/null | head -n1)
    [[ -s $f ]] || die "no .deb of $2 in $1"
    printf '%s\n' "$f"
}

# extract_vmlinux VMLINUZ OUT: writes the uncompressed ELF kernel inside a
# bzImage to OUT, for a PVH boot (no decompression stub under TCG). Tries each
# xz, zstd and gzip magic in the file until one decompresses to an ELF.
# zstd (and xz) complain about the bytes after the payload; the output is
# complete all the same, so their exit status is ignored and the ELF checked.
extract_vmlinux() {
    local in=$1 out=$2 magic tool off
    for magic in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08'; do
        tool=${magic%%:*}
        for off in $(LC_ALL=C grep -aboP "${magic#*:}" "$in" | cut -d: -f1); do
            case $tool in
                xz) tail -c +$((off + 1)) "$in" | xz -dc 2>/dev/null >"$out.tmp" || true ;;
                zstd) tail -c +$((off + 1)) "$in" | zstd -dcq 2>/dev/null >"$out.tmp" || true ;;
                gzip) tail -c +$((off + 1)) "$in" | gzip -dc 2>/dev/null >"$out.tmp" || true ;;
            esac
            if [[ -s $out.tmp && $(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]]; then
                mv "$out.tmp" "$out"
                return 0
            fi
        done
    done
    rm -f "$out.tmp"
    return 1
}

# kernel_line LINE: discovers the newest Debian kernel of LINE ("6.1" or
# "6.12"), makes its headers usable and its vmlinux bootable, and sets
#   KVER (e.g. 6.1.0-56-amd64), KVERSION (the Debian package version),
#   KDIR (the headers' build directory), VMLINUX (the ELF to boot).
kernel_line() {
    local line=$1 meta dep dir
    case $line in
        6.1)
            # The distribution's default headers: installed with apt
            # (they do not pull in an image).
            apt_ensure linux-headers-amd64
            dep=$(dpkg-query -W -f='${Depends}' linux-headers-amd64)
            # "linux-headers-6.1.0-56-amd64 (= 6.1.192-2)"
            KVER=$(sed -nE 's/^linux-headers-([^ ,]+).*/\1/p' <<<"$dep")
            [[ -n $KVER ]] || die "cannot read the kernel ABI from linux-headers-amd64's dependency: '$dep'"
            KVERSION=$(dpkg-query -W -f='${Version}' "linux-headers-$KVER") \
                || die "linux-headers-$KVER is not installed"
            KDIR=/usr/src/linux-headers-$KVER
            ;;
        6.12)
            # The 6.12 headers depend on the image (and so on initramfs-tools,
            # udev, systemd): download and unpack them instead of installing.
            meta=$(apt-cache search --names-only '^linux-headers-6\.12\..*\+deb[0-9]+-amd64$' | awk '{ print $1 }' | sort -V | tail -n1)
            if [[ -z $meta ]]; then
                apt-get update -qq
                meta=$(apt-cache search --names-only '^linux-headers-6\.12\..*\+deb[0-9]+-amd64$' | awk '{ print $1 }' | sort -V | tail -n1)
            fi
            [[ -n $meta ]] || die "no linux-headers-6.12.*-amd64 package in apt's lists"
            KVER=${meta#linux-headers-}
            KVERSION=$(apt_candidate "$meta")
            [[ -n $KVERSION && $KVERSION != "(none)" ]] || die "no candidate version of $meta"
            local abi=${KVER%-amd64} # 6.12.117+deb12
            dir=$VM_CACHE/kernels/$KVER-${KVERSION//[~:]/_}
            KDIR=$dir/root/usr/src/linux-headers-$KVER
            if [[ ! -f $dir/headers.ok ]]; then
                apt_fetch "$VM_CACHE/debs" "linux-headers-$KVER=$KVERSION" \
                    "linux-headers-$abi-common=$KVERSION" "linux-kbuild-$abi=$KVERSION"
                rm -rf "$dir/root"
                mkdir -p "$dir/root"
                local p
                for p in "linux-headers-$KVER" "linux-headers-$abi-common" "linux-kbuild-$abi"; do
                    dpkg-deb -x "$(deb_path "$VM_CACHE/debs" "$p")" "$dir/root"
                done
                # The headers' Makefile includes the -common tree by its
                # absolute path under /usr/src: point it into the unpacked copy.
                sed -i "s#/usr/src/#$dir/root/usr/src/#g" "$KDIR/Makefile"
                [[ -f $KDIR/.config ]] || die "unpacked 6.12 headers have no .config ($KDIR)"
                touch "$dir/headers.ok"
                rm -f "$VM_CACHE/debs/linux-headers-$KVER"_*.deb "$VM_CACHE/debs/linux-headers-$abi-common"_*.deb \
                    "$VM_CACHE/debs/linux-kbuild-$abi"_*.deb
            fi
            ;;
        *) die "unknown kernel line '$line' (known: 6.1 6.12)" ;;
    esac
    [[ -f $KDIR/Makefile ]] || die "no kernel headers at $KDIR"
    # Debian's headers name their release in .kernelvariables (the module's vermagic).
    local rel
    rel=$(sed -nE 's/^override KERNELRELEASE = //p' "$KDIR/.kernelvariables" 2>/dev/null || true)
    [[ -z $rel || $rel == "$KVER" ]] || die "headers at $KDIR are for $rel, expected $KVER"

    # The image: exactly the headers' ABI and version, downloaded, never installed.
    dir=$VM_CACHE/kernels/$KVER-${KVERSION//[~:]/_}
    VMLINUX=$dir/vmlinux
    if [[ ! -s $VMLINUX ]]; then
        local img=linux-image-$KVER ver
        ver=$(apt_candidate "$img")
        if [[ -z $ver || $ver == "(none)" ]] || ! apt-cache show "$img=$KVERSION" >/dev/null 2>&1; then
            # Some lines name the plain image "-unsigned".
            img=linux-image-$KVER-unsigned
        fi
        if ! apt-cache show "$img=$KVERSION" >/dev/null 2>&1; then
            apt-get update -qq || true
        fi
        apt-cache show "$img=$KVERSION" >/dev/null 2>&1 ||
            die "the image $img is not available at version $KVERSION (the headers' version; apt lists: $(apt-cache madison "$img" 2>/dev/null | awk '{ print $3 }' | xargs)). Upgrading the headers (apt-get install linux-headers-amd64) picks a kernel the archive still has."
        apt_fetch "$VM_CACHE/debs" "$img=$KVERSION"
        local deb
        deb=$(deb_path "$VM_CACHE/debs" "$img")
        [[ $(dpkg-deb -f "$deb" Version) == "$KVERSION" ]] ||
            die "image $deb has version $(dpkg-deb -f "$deb" Version), headers have $KVERSION"
        mkdir -p "$dir"
        dpkg-deb --fsys-tarfile "$deb" | tar -xO "./boot/vmlinuz-$KVER" >"$dir/vmlinuz" ||
            die "no boot/vmlinuz-$KVER in $deb"
        extract_vmlinux "$dir/vmlinuz" "$VMLINUX" ||
            die "could not extract an ELF vmlinux from $dir/vmlinuz"
        rm -f "$deb"
    fi
}
