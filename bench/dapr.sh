#!/bin/sh
# dapr.sh - the dapr-transport plugin end to end through a real Dapr
# sidecar with Apache Kafka behind it: publish latency from outbox commit
# to daprd's 204 at 200 events/s, 1,000 concurrent task creations until
# every event is acknowledged, sustained events/s through daprd and where
# the time goes, reminder latency remind_at -> SMTP 250 via Dapr jobs, and
# the resident memory of daprd and todod; printed as the issue's table.
# PostgreSQL, Kafka 4.x, an SMTP server (aiosmtpd), the Dapr scheduler and
# daprd run as the tests run them (tests/harness), with the component
# files of contrib/dapr.  Not part of the test suite.
#   TODOD_BUILDDIR=/path/to/build bench/dapr.sh
# Needs what the integration tests need, daprd and the scheduler from
# contrib/build-dapr.sh (or TODOD_DAPR_BINDIR) among it.
# PUBLISH_TASKS, PUBLISH_RATE, BURST_TASKS, BURST_CONNECTIONS,
# SUSTAINED_EVENTS, REMINDER_TASKS, REMINDER_SPREAD (seconds) and
# DB_POOL_SIZE vary the load.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/dapr.py" "$@"
