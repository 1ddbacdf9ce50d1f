#!/bin/bash
# Builds Dapr's sidecar (daprd, with the stable components) and its
# scheduler from Dapr's Go module, for the dapr-transport integration tests.
#   contrib/build-dapr.sh [PREFIX]
# PREFIX defaults to ${XDG_CACHE_HOME:-~/.cache}/todod-tests/dapr-1.18.0 and
# gets bin/daprd and bin/scheduler; a PREFIX that already holds both is left
# alone, so tests/run calls this every time.  The Go module and build caches
# live under PREFIX too: a cold build takes 5-15 minutes of two cores and
# about 2 GB of memory, a warm one seconds.
#
# Needs Go >= 1.26.4 on PATH (Dapr 1.18's go.mod asks for it).  No Dapr
# source is kept in this project: a throwaway module requires
# github.com/dapr/dapr and builds its commands.
set -euo pipefail

version=1.18.0
cache=${XDG_CACHE_HOME:-$HOME/.cache}/todod-tests
prefix=${1:-$cache/dapr-$version}
case $prefix in /*) ;; *) prefix=$(pwd)/$prefix ;; esac

built_version() {
	[ -x "$prefix/bin/daprd" ] && [ -x "$prefix/bin/scheduler" ] &&
		"$prefix/bin/daprd" --version 2>/dev/null | head -n 1
}
[ "$(built_version || true)" = "$version" ] && exit 0

# The official Go archive unpacks to /usr/local/go, which a non-login
# shell's PATH often lacks.
command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH=/usr/local/go/bin:$PATH
command -v go >/dev/null || {
	echo "build-dapr: Go >= 1.26.4 is needed on PATH to build daprd" >&2
	exit 1
}

export GOPATH=$prefix/go GOMODCACHE=$prefix/go/pkg/mod GOCACHE=$prefix/go/cache
export GOFLAGS=-mod=mod CGO_ENABLED=0
# Dapr 1.18.0 pins go-etcd-cron v0.12.5, whose archive the module proxy
# reachable here refuses; v0.12.3 builds and schedules jobs correctly.  The
# checksum database does not answer for v0.12.3, so that one module is
# taken on the proxy's word.
export GONOSUMDB=github.com/diagridio/go-etcd-cron

mkdir -p "$prefix/bin"
work=$(mktemp -d "${TMPDIR:-/tmp}/todod-dapr-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

dapr_dir=$(go mod download -json "github.com/dapr/dapr@v$version" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')

# Dapr's own replace directives are not inherited by a module that
# requires it, so they are repeated here.
cat >"$work/go.mod" <<MOD
module todod.test/daprbuild

go 1.26.4

require github.com/dapr/dapr v$version

replace (
	dubbo.apache.org/dubbo-go/v3 => dubbo.apache.org/dubbo-go/v3 v3.0.3-0.20230118042253-4f159a2b38f3
	gopkg.in/couchbaselabs/gocbconnstr.v1 => github.com/couchbaselabs/gocbconnstr v1.0.5
	github.com/chenzhuoyu/iasm => github.com/chenzhuoyu/iasm v0.9.0
	github.com/chzyer/logex => github.com/chzyer/logex v1.2.1
	github.com/gobwas/pool => github.com/gobwas/pool v0.2.1
	github.com/toolkits/concurrent => github.com/niean/gotools v0.0.0-20151221085310-ff3f51fc5c60
	github.com/diagridio/go-etcd-cron => github.com/diagridio/go-etcd-cron v0.12.3
)
MOD
install -m 644 "$dapr_dir/go.sum" "$work/go.sum"

ldflags="-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=$version"
cd "$work"
echo "build-dapr: building daprd and scheduler $version into $prefix/bin" >&2
go build -tags stablecomponents -ldflags "$ldflags" -o "$prefix/bin/daprd.new" \
	github.com/dapr/dapr/cmd/daprd
go build -ldflags "$ldflags" -o "$prefix/bin/scheduler.new" github.com/dapr/dapr/cmd/scheduler
mv "$prefix/bin/daprd.new" "$prefix/bin/daprd"
mv "$prefix/bin/scheduler.new" "$prefix/bin/scheduler"
