#!/usr/bin/env bash
# Installs the Debian packages a make target needs, when they are missing.
#   scripts/install-deps.sh build   oneDNN (the CPU device's GEMM and planned encoder chain,
#                                   through cgo) and
#                                   libjpeg-turbo's TurboJPEG (imgproc decodes JPEGs with it)
#   scripts/install-deps.sh test    + the CUDA 11.8 toolkit (contrib non-free) to compile the
#                                   cuda-tagged packages and check the PTX, Chromium and its
#                                   driver for the page tests, graphviz for `describe`, WordNet
#                                   (tags/ checks its generated noun map against it)
#   scripts/install-deps.sh bench   + the benchmarks' peers: Debian's PyTorch and Flask, and
#                                   OpenBLAS, without which Debian's PyTorch multiplies
#                                   matrices with the reference BLAS (libblas3: 6 GFLOP/s
#                                   against OpenBLAS's 130-200 on 2 cores); where they cannot
#                                   be installed (no root, no network) it says so, and the
#                                   benchmarks measure captioner alone
set -euo pipefail
mode=${1:-build}
packages=(libdnnl-dev libturbojpeg0-dev pkg-config)
peers=() # the benchmarks' peers: without them the benchmarks measure captioner alone
case $mode in
test) packages+=(nvidia-cuda-dev nvidia-cuda-toolkit chromium chromium-driver graphviz wordnet-base) ;;
bench) peers=(python3-torch python3-torchvision python3-pil python3-numpy python3-flask libopenblas0-pthread) ;;
esac
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=() missing_peers=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
for p in "${peers[@]}"; do installed "$p" || missing_peers+=("$p"); done
all=("${missing[@]}" "${missing_peers[@]}")
[ ${#all[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "missing Debian packages: ${all[*]}; install them with: sudo apt-get install ${all[*]}" >&2
	[ ${#missing[@]} -eq 0 ] # only peers missing: go on without them
	exit
fi
install() {
	echo "installing $*"
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}
if [ ${#missing[@]} -eq 0 ]; then
	install "${missing_peers[@]}" || echo "could not install the benchmarks' peers (${missing_peers[*]}): measuring captioner alone" >&2
	exit 0
fi
src=/etc/apt/sources.list.d/debian.sources
# nvidia-cuda-* live in Debian's contrib and non-free components; the apt sources
# change only when one of them is missing (the test set), never for a build.
if [[ " ${missing[*]} " == *" nvidia-cuda-"* ]] && [ -f "$src" ] && ! grep -q "non-free" "$src"; then
	sed -i 's/^Components: main$/Components: main contrib non-free/' "$src"
fi
install "${all[@]}"
