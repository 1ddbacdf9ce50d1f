#!/bin/sh
# mcp.sh - mcp-tools under load: ping, tools/call get_task (against
# pgbench's prepared primary-key SELECT of the same row) and add_task
# (against pgbench writing the same rows), whole MCP sessions per second,
# and todod's resident memory, against a throwaway PostgreSQL and a freshly
# started todod.  Not part of the test suite.
#   TODOD_BUILDDIR=/path/to/build bench/mcp.sh
# Needs wrk, pgbench, PostgreSQL's server binaries and python3-psycopg2.
# DURATION (seconds), CONNECTIONS and DB_POOL_SIZE vary the load; PG_DURABLE=1
# runs PostgreSQL with fsync and synchronous commits on, as deployed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
export DURATION="${DURATION:-10}"
exec /usr/bin/python3 "$here/mcp.py" "$@"
