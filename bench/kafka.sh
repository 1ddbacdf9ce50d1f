#!/bin/sh
# kafka.sh - the kafka-direct transport end to end against a real Apache
# Kafka broker: publish latency from outbox commit to the broker's
# delivery report, 1,000 concurrent task creations until every event is
# acknowledged and on task-events, reminder latency remind_at -> SMTP 250
# through Kafka, and todod's resident memory.  A throwaway PostgreSQL, a
# Kafka 4.x broker (tests/harness/kafka.py), an SMTP server (aiosmtpd) and
# a freshly started todod.  Not part of the test suite.
#   TODOD_BUILDDIR=/path/to/build bench/kafka.sh
# Needs Java 17+, the cached Kafka jars (or Maven to fetch them), kcat,
# PostgreSQL's server binaries, python3-psycopg2 and python3-aiosmtpd.
# PUBLISH_TASKS, PUBLISH_RATE, BURST_TASKS, BURST_CONNECTIONS,
# REMINDER_TASKS, REMINDER_SPREAD (seconds), KAFKA_LINGER_MS, KAFKA_PARTITIONS,
# DB_POOL_SIZE and WARMUP_REQUESTS (produce requests that warm the broker's
# JVM before todod starts; 0 for a cold broker) vary the load; KAFKA_OPTIONS adds kafka-direct options, space
# separated (e.g. "batch_size=64K librdkafka.socket.nagle.disable=false").
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/kafka.py" "$@"
