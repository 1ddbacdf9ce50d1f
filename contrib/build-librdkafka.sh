#!/bin/sh
# Builds librdkafka 2.12.1 from source into PREFIX, for the integration tests.
#   contrib/build-librdkafka.sh [PREFIX]
# PREFIX defaults to ${XDG_CACHE_HOME:-~/.cache}/todod-tests/librdkafka-2.12.1;
# a PREFIX that already holds this version is left alone, so tests/run can
# call this every time.
#
# Why not Debian's librdkafka-dev 2.0.2: its SCRAM client sends a doubled
# nonce, which every Kafka 4.x refuses (fixed in librdkafka 2.6.1), so the
# SASL/SCRAM test cannot pass with it.
#
# Where the source comes from: the Rust crate registry's package rdkafka-sys
# 4.10.0+2.12.1 carries librdkafka 2.12.1's source tree, and cargo fetches
# it through the ordinary registry (with its checksum) into
# $CARGO_HOME/registry/src.  The tree there is only read: it is copied to
# a scratch directory and built there.
set -eu

version=2.12.1
crate=rdkafka-sys
crate_version=4.10.0
cache=${XDG_CACHE_HOME:-$HOME/.cache}/todod-tests
prefix=${1:-$cache/librdkafka-$version}
case $prefix in /*) ;; *) prefix=$(pwd)/$prefix ;; esac
pc=$prefix/lib/pkgconfig/rdkafka.pc

installed_version() {
	[ -f "$pc" ] && sed -n 's/^Version: *//p' "$pc"
}

[ "$(installed_version || true)" = "$version" ] && exit 0

cargo_home=${CARGO_HOME:-$HOME/.cargo}
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

find_source() {
	for dir in "$cargo_home"/registry/src/*/"$crate-$crate_version+$version"/librdkafka; do
		[ -x "$dir/configure" ] && { echo "$dir"; return 0; }
	done
	return 1
}

# A cargo older than 1.70 reads the Rust crate index as a git clone of
# github.com by default; 1.70+ reads the sparse index.  Bookworm's `cargo`
# is 0.66 (Rust 1.65); its cargo-web is 1.85+ and replaces it.
cargo_is_sparse() {
	v=$("$1" --version 2>/dev/null | sed -n 's/^cargo \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
	[ -n "$v" ] && set -- $v && { [ "$1" -gt 1 ] || [ "$2" -ge 70 ]; }
}

ensure_cargo() {
	c=$(command -v cargo 2>/dev/null) && cargo_is_sparse "$c" && return 0
	if [ -x "$cargo_home/bin/cargo" ] && cargo_is_sparse "$cargo_home/bin/cargo"; then
		PATH=$cargo_home/bin:$PATH
		export PATH
		return 0
	fi
	echo "build-librdkafka: installing Debian's cargo-web (cargo 1.70+ reads the sparse index)" >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends cargo-web \
		>/dev/null
}

# `cargo fetch` in a throwaway project unpacks the crate (and the few it
# depends on) into the registry; nothing is compiled.
fetch_source() {
	ensure_cargo
	project=$(mktemp -d "${TMPDIR:-/tmp}/todod-rdkafka-fetch.XXXXXX")
	mkdir "$project/src"
	: >"$project/src/lib.rs"
	cat >"$project/Cargo.toml" <<EOF
[package]
name = "todod-librdkafka-source"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
$crate = { version = "=$crate_version", default-features = false }
EOF
	echo "build-librdkafka: fetching $crate $crate_version with cargo" >&2
	(cd "$project" && CARGO_HOME=$cargo_home cargo fetch -q) || {
		rm -rf "$project"
		echo "build-librdkafka: cargo fetch of $crate $crate_version failed" >&2
		exit 1
	}
	rm -rf "$project"
}

mkdir -p "$cache"
# One build at a time per cache: concurrent test runs wait, then find it done.
exec 9>"$cache/librdkafka-$version.lock"
flock 9
[ "$(installed_version || true)" = "$version" ] && exit 0

src=$(find_source) || { fetch_source; src=$(find_source); } || {
	echo "build-librdkafka: no librdkafka source under $cargo_home/registry/src" >&2
	exit 1
}

work=$(mktemp -d "$cache/librdkafka-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "build-librdkafka: building librdkafka $version into $prefix" >&2
cp -a "$src" "$work/src-tree"
cd "$work/src-tree"
# GSSAPI (Cyrus SASL) and libcurl (OAUTHBEARER OIDC) are not used by
# todod; SSL brings TLS and SCRAM, which it does use.
./configure --prefix="$prefix" --disable-gssapi --disable-curl --enable-ssl \
	--enable-zlib --enable-zstd --enable-lz4-ext >"$work/configure.log" 2>&1 || {
	tail -n 40 "$work/configure.log" >&2
	exit 1
}
for feature in SSL SASL_SCRAM ZSTD; do
	grep -q "^#define WITH_$feature 1" config.h || {
		echo "build-librdkafka: $feature would not be built in (missing -dev package?):" >&2
		grep -iE "ssl|scram|zstd" "$work/configure.log" | tail -n 20 >&2
		exit 1
	}
done
make -C src -j"${JOBS:-2}" >"$work/make.log" 2>&1 || { tail -n 40 "$work/make.log" >&2; exit 1; }
# Installed into a staging tree, then moved into place whole: an
# interrupted build never leaves a PREFIX that looks complete.
make -C src install DESTDIR="$work/stage" >>"$work/make.log" 2>&1 || {
	tail -n 40 "$work/make.log" >&2
	exit 1
}
rm -rf "$prefix"
mkdir -p "$(dirname "$prefix")"
mv "$work/stage$prefix" "$prefix"
got=$(installed_version || true)
[ "$got" = "$version" ] || {
	echo "build-librdkafka: $pc says version '$got', expected $version" >&2
	exit 1
}
echo "build-librdkafka: librdkafka $version installed in $prefix" >&2
