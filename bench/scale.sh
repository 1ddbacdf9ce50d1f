#!/bin/sh
# scale.sh - the store at a million tasks: 1,000,000 tasks over 1,000 users
# (one with 100,000) loaded with SQL into a throwaway PostgreSQL, then, with
# 50 connections over MCP, get_task, list_tasks (first page and 50 cursors
# deep) and search_tasks p50/p99; add_task against pgbench writing the same
# rows; 100,000 reminders due in one minute mailed to an mbox; the outbox
# relay draining 200,000 events in process and to a Kafka broker; todod's
# resident memory throughout.  Not part of the test suite.
#   TODOD_BUILDDIR=/path/to/build bench/scale.sh
#   SCALE=small TODOD_BUILDDIR=... bench/scale.sh     (20,000 tasks: for development)
# Needs wrk, pgbench, PostgreSQL's server binaries, python3-psycopg2, Java 17+
# and the cached Kafka jars.  USERS, TASKS, BIG_TASKS, REMINDERS,
# OUTBOX_EVENTS, DURATION, CONNECTIONS and DB_POOL_SIZE vary the load.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/scale.py" "$@"
