#!/usr/bin/env bash
# Build the cluster's upstream programs from their pinned Go modules, once.
#
# Each directory under cluster/go/ is a small Go module whose go.mod pins one
# upstream release and names its programs as `tool` directives. Its binaries go
# into a cache directory keyed by the hash of that go.mod/go.sum and the Go
# version, so a warm machine rebuilds nothing until a pin changes.
#
#   cluster/build.sh [MODULE...]   build (or reuse) and print the bin directories
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache_root="${TKHUB_CLUSTER_CACHE:-/var/cache/tkhub-cluster}"
command -v go >/dev/null || {
  echo "cluster/build.sh: Go is not installed; install Go >= 1.24 (the Debian package golang-go or the toolchain from go.dev)" >&2
  exit 2
}
modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(etcd kubernetes kwok kueue)

bin_dir() {  # the cache directory of one module's binaries
  local mod="$1"
  local key
  key=$(cat "$here/go/$mod/go.mod" "$here/go/$mod/go.sum" "$here/go/$mod/ldflags" <(go env GOVERSION GOARCH) 2>/dev/null | sha256sum | cut -c1-16)
  echo "$cache_root/$mod-$key/bin"
}

for mod in "${modules[@]}"; do
  out="$(bin_dir "$mod")"
  if [ -f "$out/.complete" ]; then
    echo "$mod: cached in $out" >&2
  else
    echo "$mod: building its programs into $out (the first build takes long; later ones reuse it)" >&2
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    start=$(date +%s)
    (cd "$here/go/$mod" && CGO_ENABLED="${CGO_ENABLED:-1}" GOFLAGS=-mod=readonly \
      go build -trimpath -ldflags="-s -w $(cat ldflags 2>/dev/null)" -o "$out.tmp/" tool)
    touch "$out.tmp/.complete"
    rm -rf "$out" && mv "$out.tmp" "$out"
    echo "$mod: built in $(( $(date +%s) - start )) s" >&2
  fi
  echo "$out"
done
