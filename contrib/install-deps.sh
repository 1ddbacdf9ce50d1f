#!/bin/sh
# Installs the Debian packages todod needs, only when some are missing.
#   contrib/install-deps.sh          build and run
#   contrib/install-deps.sh test     also the test suite's tools and services:
#     clang and its runtime libraries (libclang-rt-dev: libFuzzer and the
#     sanitizer runtimes, a Recommends that --no-install-recommends drops)
#     build the fuzz targets;
#     Java and Maven run the Kafka broker the harness assembles from Maven
#     Central; kcat reads and writes its topics; openssl makes its TLS
#     certificates; libssl, zlib, zstd and lz4 headers build the librdkafka
#     the tests use (contrib/build-librdkafka.sh); redis-server is the
#     Redis Streams behind Dapr's second pub/sub component (the harness
#     runs it by hand: the package's unit needs systemd); curl and jq run
#     the operator scripts of contrib/ops, which the suite runs, and
#     shellcheck checks them; python3-yaml reads the Helm chart's rendered
#     manifests; dpkg-dev, debhelper, fakeroot and lintian build and check
#     the Debian packages, rpm checks the RPM spec, mmdebstrap makes the
#     Debian roots the packages and the container image's files are tried
#     in (test_packaging.py).
set -eu
pkgs="build-essential autoconf automake libtool pkg-config libevent-dev libjson-c-dev
      libcurl4-openssl-dev libpq-dev postgresql"
if [ "${1:-}" = test ]; then
	pkgs="$pkgs clang libclang-rt-dev python3 python3-pytest python3-psycopg2 python3-venv python3-aiosmtpd python3-yaml postgresql-client wrk
	      librdkafka-dev kcat openjdk-17-jre-headless maven openssl
	      libssl-dev zlib1g-dev libzstd-dev liblz4-dev redis-server curl jq shellcheck
	      dpkg-dev debhelper fakeroot lintian rpm mmdebstrap"
fi
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
