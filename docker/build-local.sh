#!/usr/bin/env bash
# Builds the CPU image from docker/Dockerfile without a Docker engine and without a
# container registry: buildah (Debian package) builds it, and the two base images the
# Dockerfile pins are stood in for by Debian bookworm made with debootstrap (the Go stage
# gets this machine's Go toolchain, which must be the release the Dockerfile pins).
#
#   docker/build-local.sh [OUT]     (as root; needs: buildah debootstrap, network to Debian
#                                    and the Go module proxy)
#
# OUT (default bin/captioner-cpu.tar) is an image archive in Docker's format, which keeps
# the HEALTHCHECK (OCI's format has none): `podman load -i OUT` or `docker load -i OUT`
# gives captioner:cpu. With CAPTIONER_ASSETS set, the encoder weights
# come from that folder (checked by `captioner setup`) instead of being downloaded during
# the build: for machines that cannot reach GitHub.
#
# The stand-in bases carry the pinned names only inside this script's own image store
# (CAPTIONER_BUILD_DIR, default ~/.cache/captioner/build-local), never in the system's.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-bin/captioner-cpu.tar}
work=${CAPTIONER_BUILD_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/captioner/build-local}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$work" "$(dirname "$out")"

die() { echo "build-local: $*" >&2; exit 1; }
for tool in buildah debootstrap go; do
	command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install buildah debootstrap; Go from go.dev)"
done

# Chroot isolation and the vfs driver work inside containers and on hosts without
# cgroup v2 or overlay support, at some cost in speed and disk.
b() { buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"; }
export BUILDAH_ISOLATION=chroot

# The names and releases the Dockerfile pins, read from it so the two cannot drift.
go_image=$(awk 'toupper($1) == "FROM" && $2 ~ /^golang:/ {print $2; exit}' docker/Dockerfile)
runtime_image=$(awk 'toupper($1) == "FROM" && $2 ~ /^debian:/ {print $2; exit}' docker/Dockerfile)
[ -n "$go_image" ] && [ -n "$runtime_image" ] || die "docker/Dockerfile no longer has FROM golang:... and FROM debian:...; update this script"
suite=${go_image##*-}          # golang:1.26.8-bookworm -> bookworm
go_release=${go_image#golang:} # -> 1.26.8-bookworm
go_release=go${go_release%%-*} # -> go1.26.8
[ "$(go env GOVERSION)" = "$go_release" ] || die "this machine has $(go env GOVERSION); the Dockerfile builds with $go_release"

has_image() { b inspect --type image "$1" >/dev/null 2>&1; }

# Runtime stand-in: Debian $suite, minimal, as debootstrap makes it.
if ! has_image "$runtime_image"; then
	rootfs="$work/rootfs-$suite"
	rm -rf "$rootfs"
	echo "build-local: debootstrap $suite into $rootfs"
	debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" ||
		die "debootstrap failed; see $work/debootstrap.log"
	rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
	tar -C "$rootfs" --numeric-owner -cf "$rootfs.tar" .
	ctr=$(b from scratch)
	b add "$ctr" "$rootfs.tar" / >/dev/null # a local tar archive is unpacked
	b config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd bash "$ctr"
	b commit -q --rm "$ctr" "$runtime_image" >/dev/null
	rm -rf "$rootfs" "$rootfs.tar"
fi

# Go stand-in: the runtime stand-in plus what the golang image adds (a C toolchain, make,
# certificates; the Go toolchain in /usr/local/go; GOPATH /go).
if ! has_image "$go_image"; then
	echo "build-local: making $go_image from $runtime_image and $(go env GOROOT)"
	ctr=$(b from --pull=never "$runtime_image")
	b run "$ctr" -- sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ca-certificates gcc libc6-dev make pkg-config git >/dev/null && rm -rf /var/lib/apt/lists/*'
	b copy "$ctr" "$(go env GOROOT)" /usr/local/go >/dev/null
	# Trust what this machine trusts, for networks whose proxy re-signs TLS. Only the build
	# stage sees it; the image it produces does not.
	b copy "$ctr" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt >/dev/null
	b config --env GOPATH=/go --env PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
	b commit -q --rm "$ctr" "$go_image" >/dev/null
fi

args=()
if [ -n "${CAPTIONER_ASSETS:-}" ]; then
	# The assets stage replaced by a folder laid out as that stage's output: the encoder's
	# files, checked by `captioner setup`, and their import, both by a host build of
	# captioner (this machine runs the build stage's Debian release).
	seed="$work/assets"
	cache="$seed/out/cache/captioner"
	rm -rf "$seed"
	mkdir -p "$cache/assets/models"
	cp -r "$CAPTIONER_ASSETS/models/mobilenet_v2" "$cache/assets/models/"
	go build -o "$work/captioner" ./cmd/captioner
	"$work/captioner" setup --assets "$cache/assets" >/dev/null ||
		die "the encoder files in $CAPTIONER_ASSETS do not verify"
	CAPTIONER_CACHE="$cache" "$work/captioner" import --assets "$cache/assets" >/dev/null
	args+=(--build-context "assets=$seed")
fi

echo "build-local: building docker/Dockerfile"
b bud --format docker --pull=never --network host --ignorefile docker/Dockerfile.dockerignore "${args[@]}" \
	-f docker/Dockerfile -t localhost/captioner:cpu .
rm -f "$out"
b push -q localhost/captioner:cpu "docker-archive:$out:captioner:cpu"
echo "build-local: wrote $out ($(du -h "$out" | cut -f1)); load it with: podman load -i $out"
