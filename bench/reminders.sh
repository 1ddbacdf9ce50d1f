#!/bin/sh
# reminders.sh - reminders and email end to end: latency from each task's
# remind_at to the SMTP server's 250, e-mail throughput with many
# reminders due at once, and todod's resident memory, against a throwaway
# PostgreSQL, a real SMTP server (aiosmtpd) and a freshly started todod.
# Not part of the test suite.
#   TODOD_BUILDDIR=/path/to/build bench/reminders.sh
# Needs PostgreSQL's server binaries, python3-psycopg2 and python3-aiosmtpd.
# LATENCY_TASKS, SPREAD (seconds), THROUGHPUT_TASKS, DB_POOL_SIZE,
# REMINDERS_BATCH and OUTBOX_POLL_INTERVAL vary the load.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/reminders.py" "$@"
