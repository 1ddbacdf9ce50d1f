#!/bin/sh
# mcp_flood.sh - what a flood of initialize requests with bad tokens does
# to a legitimate client's latency: tools/call get_task alone, then beside
# a flood of tokens shaped like real ones, then beside a flood of garbage
# tokens.  Against a throwaway PostgreSQL and a freshly started todod.
# Not part of the test suite.
#   TODOD_BUILDDIR=/path/to/build bench/mcp_flood.sh
# Needs wrk, PostgreSQL's server binaries and python3-psycopg2.
# DURATION (seconds), CONNECTIONS (the legitimate client's), FLOOD_CONNECTIONS,
# FLOOD_RATE (initialize/s the flood aims at; 0: unlimited) and DB_POOL_SIZE
# vary the load.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
export DURATION="${DURATION:-10}"
exec /usr/bin/python3 "$here/mcp_flood.py" "$@"
