#!/bin/bash
# Builds the helm command (Helm 4) from its Go module, for the chart tests
# (tests/integration/test_helm.py) and for whoever renders k8s/helm/todod
# on a machine without a packaged helm.
#   contrib/build-helm.sh [PREFIX]
# PREFIX defaults to ${XDG_CACHE_HOME:-~/.cache}/todod-tests/helm-4.3.2 and
# gets bin/helm; a PREFIX whose bin/helm already reports this version is
# left alone, so tests/run calls this every time (a warm run returns at
# once).  The Go module and build caches live under PREFIX too; a cold
# build took 22 minutes on two cores shared with other builds.
#
# Needs Go >= 1.26 on PATH or in /usr/local/go (Helm 4.3's go.mod asks for
# 1.26.0).  No Helm source is kept in this project: `go install` fetches
# helm.sh/helm/v4 at the pinned version through the Go module proxy, with
# its checksums, and builds cmd/helm.
set -euo pipefail

version=4.3.2
cache=${XDG_CACHE_HOME:-$HOME/.cache}/todod-tests
prefix=${1:-$cache/helm-$version}
case $prefix in /*) ;; *) prefix=$(pwd)/$prefix ;; esac

built_version() {
	[ -x "$prefix/bin/helm" ] &&
		"$prefix/bin/helm" version --template '{{.Version}}' 2>/dev/null
}
[ "$(built_version || true)" = "v$version" ] && exit 0

# The official Go archive unpacks to /usr/local/go, which a non-login
# shell's PATH often lacks.
command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH=/usr/local/go/bin:$PATH
command -v go >/dev/null || {
	echo "build-helm: Go >= 1.26 is needed on PATH to build helm" >&2
	exit 1
}

mkdir -p "$prefix/bin"
# One build at a time per prefix: a concurrent run waits, then finds it done.
exec 9>"$prefix.lock"
flock 9
[ "$(built_version || true)" = "v$version" ] && exit 0

export GOPATH=$prefix/go GOMODCACHE=$prefix/go/pkg/mod GOCACHE=$prefix/go/cache
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN=$prefix/bin.new
rm -rf "$GOBIN"
# What Helm's own Makefile stamps into a release build: without it
# `helm version` says v4.3 and nothing tells which patch release it is.
pkg=helm.sh/helm/v4/internal/version
ldflags="-s -w -X $pkg.version=v$version -X $pkg.metadata= -X $pkg.gitTreeState=clean"
echo "build-helm: building helm $version into $prefix/bin" >&2
start=$(date +%s)
# Outside any module, so no go.mod of the caller's is read or changed.
(cd / && go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v4/cmd/helm@v$version")
mv "$GOBIN/helm" "$prefix/bin/helm.new"
rmdir "$GOBIN"
mv "$prefix/bin/helm.new" "$prefix/bin/helm"
got=$(built_version || true)
[ "$got" = "v$version" ] || {
	echo "build-helm: the helm built reports '$got', not v$version" >&2
	exit 1
}
echo "build-helm: helm $version built in $(($(date +%s) - start)) s" >&2
