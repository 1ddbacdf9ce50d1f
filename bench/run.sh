#!/bin/sh
# run.sh - every benchmark against a throwaway PostgreSQL and a freshly
# started todod, ending in a summary block.  Not part of the test suite.
#   TODOD_BUILDDIR=/path/to/build bench/run.sh
# Needs wrk, pgbench, PostgreSQL's server binaries and python3-psycopg2.
# DURATION (seconds), CONNECTIONS and DB_POOL_SIZE vary the load.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
export DURATION="${DURATION:-10}"
exec /usr/bin/python3 "$here/run.py" "$@"
