#!/bin/bash
# Builds kube-apiserver (from Go module k8s.io/kubernetes) and etcd (from
# go.etcd.io/etcd/server/v3) for the test that submits the Helm chart's
# objects to a real API server in a server-side dry-run.
#   contrib/build-kube.sh [PREFIX]
# PREFIX defaults to ${XDG_CACHE_HOME:-~/.cache}/todod-tests/kube-1.37.2
# and gets bin/kube-apiserver and bin/etcd; a PREFIX that already holds
# both at these versions is left alone, so tests/run calls this every time.
# The Go module and build caches live under PREFIX too: a cold build took
# 40 minutes on two cores other jobs shared (15 minutes of CPU) and left
# 0.75 GB of modules and 2.9 GB of build cache; a warm run returns at once.
# prometheus-operator's module is downloaded there too, only for its
# CustomResourceDefinitions (ServiceMonitor, PrometheusRule), which the
# test installs; the file PREFIX/crds/prometheus-operator names their
# directory.
#
# Needs Go >= 1.26 on PATH (Kubernetes 1.37's go.mod asks for it).  No
# Kubernetes or etcd source is kept in this project: throwaway modules
# require them and build their commands.
set -euo pipefail

kube_version=1.37.2
etcd_version=3.7.3
# The newest release whose module archive the Go module proxy serves here.
prometheus_operator_version=0.94.0
cache=${XDG_CACHE_HOME:-$HOME/.cache}/todod-tests
prefix=${1:-$cache/kube-$kube_version}
case $prefix in /*) ;; *) prefix=$(pwd)/$prefix ;; esac
mkdir -p "$prefix/bin"

binaries() {
	[ -x "$prefix/bin/kube-apiserver" ] && [ -x "$prefix/bin/etcd" ] &&
		"$prefix/bin/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes v$kube_version" &&
		"$prefix/bin/etcd" --version 2>/dev/null | grep -qx "etcd Version: $etcd_version"
}
crds() {
	[ -d "$(cat "$prefix/crds/prometheus-operator" 2>/dev/null)" ]
}
binaries && crds && exit 0

# Two test runs at once build once: the second waits, then finds both.
exec 9>"$prefix.lock"
flock 9
binaries && crds && exit 0

# The official Go archive unpacks to /usr/local/go, which a non-login
# shell's PATH often lacks.
command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH=/usr/local/go/bin:$PATH
command -v go >/dev/null || {
	echo "build-kube: Go >= 1.26 is needed on PATH to build kube-apiserver and etcd" >&2
	exit 1
}

export GOPATH=$prefix/go GOMODCACHE=$prefix/go/pkg/mod GOCACHE=$prefix/go/cache
export GOFLAGS=-mod=mod CGO_ENABLED=0
work=$(mktemp -d "${TMPDIR:-/tmp}/todod-kube-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

moddir() {
	go mod download -json "$1" | python3 -c '
import json, sys
info = json.load(sys.stdin)
if "Error" in info:
    sys.exit("build-kube: " + info["Error"])
print(info["Dir"])'
}

if ! crds; then
	po_dir=$(moddir "github.com/prometheus-operator/prometheus-operator@v$prometheus_operator_version")
	mkdir -p "$prefix/crds"
	echo "$po_dir/example/prometheus-operator-crd" >"$prefix/crds/prometheus-operator"
	crds || { echo "build-kube: no CRDs in $po_dir/example/prometheus-operator-crd" >&2; exit 1; }
fi
binaries && exit 0

# kube-apiserver.  Kubernetes' go.mod requires its staging modules
# (k8s.io/api, k8s.io/apiserver, ...) at v0.0.0 and replaces them with
# directories under ./staging, which its module archive does not carry.
# Each is published on its own as v0.MINOR.PATCH, so the throwaway module
# points every such replace at that release, read from the go.mod of the
# Kubernetes version being built.
kube_dir=$(moddir "k8s.io/kubernetes@v$kube_version")
staging_version=v0.${kube_version#*.}
mkdir -p "$work/kube"
{
	printf 'module todod.test/kubebuild\n\ngo 1.26.0\n\n'
	printf 'require k8s.io/kubernetes v%s\n\nreplace (\n' "$kube_version"
	python3 - "$kube_dir/go.mod" "$staging_version" <<'PY'
import re, sys
path, version = sys.argv[1], sys.argv[2]
staged = re.findall(r'^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/src/\1\s*$',
                    open(path).read(), re.M)
if not staged:
    sys.exit("build-kube: no staging replaces found in " + path)
for mod in staged:
    print(f"\t{mod} => {mod} {version}")
PY
	printf ')\n'
} >"$work/kube/go.mod"
install -m 644 "$kube_dir/go.sum" "$work/kube/go.sum"

# etcd: etcdmain.Main is what etcd's own main package calls.
mkdir -p "$work/etcd"
cat >"$work/etcd/go.mod" <<MOD
module todod.test/etcdbuild

go 1.26.0

require go.etcd.io/etcd/server/v3 v$etcd_version
MOD
cat >"$work/etcd/main.go" <<'GO'
// Command etcd runs etcd's server, as the upstream etcd command does.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO

echo "build-kube: building etcd $etcd_version and kube-apiserver $kube_version into $prefix/bin" >&2
cd "$work/etcd"
etcd_dir=$(moddir "go.etcd.io/etcd/server/v3@v$etcd_version")
install -m 644 "$etcd_dir/go.sum" go.sum

go build -trimpath -ldflags "-s -w" -o "$prefix/bin/etcd.new" .

cd "$work/kube"
# The version kube-apiserver reports comes from these variables, which
# Kubernetes' own build sets the same way.
v=k8s.io/component-base/version
ldflags="-s -w -X $v.gitVersion=v$kube_version -X $v.gitMajor=${kube_version%%.*}"
ldflags="$ldflags -X $v.gitMinor=$(echo "$kube_version" | cut -d. -f2) -X $v.gitTreeState=clean"
go build -trimpath -ldflags "$ldflags" -o "$prefix/bin/kube-apiserver.new" k8s.io/kubernetes/cmd/kube-apiserver
mv "$prefix/bin/etcd.new" "$prefix/bin/etcd"
mv "$prefix/bin/kube-apiserver.new" "$prefix/bin/kube-apiserver"
binaries || {
	echo "build-kube: the binaries built do not report v$kube_version / $etcd_version" >&2
	exit 1
}
