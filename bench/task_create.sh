#!/bin/sh
# task_create.sh - creating a task through todod (HTTP, JSON, the store
# function, the outbox row, and the relay delivering the event to the
# probe) against PostgreSQL doing only the two INSERTs that it stands for.
#   bench/task_create.sh BASE_URL DSN USER_ID
# The probe plugin must be loaded; USER_ID is the user it creates tasks for.
# DURATION (seconds) and CONNECTIONS override the defaults 10 and 50.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
base=${1:?usage: $0 BASE_URL DSN USER_ID}
dsn=${2:?usage: $0 BASE_URL DSN USER_ID}
uid=${3:?usage: $0 BASE_URL DSN USER_ID}
duration=${DURATION:-10}
conns=${CONNECTIONS:-50}

wrk_cmd="wrk -t2 -c$conns -d${duration}s --latency -s $here/post_task.lua $base"
wrk_out=$($wrk_cmd)
todod_tps=$(echo "$wrk_out" | awk '/Requests\/sec:/ { print $2 }')
summary=$(echo "$wrk_out" | awk '
	$1 == "50%" { p50 = $2 }
	$1 == "99%" { p99 = $2 }
	/Non-2xx or 3xx responses:/ { bad = $NF }
	END { printf "p50 %s  p99 %s  non-201 %d", p50, p99, bad }')

pg_cmd="pgbench -n -c$conns -j2 -T$duration -D uid=$uid -f $here/task_create.sql $dsn"
pg_out=$($pg_cmd 2>&1)
pg_tps=$(echo "$pg_out" | awk '/^tps = / { print $3; exit }')
if [ -z "$pg_tps" ]; then
	echo "pgbench failed:" >&2
	echo "$pg_out" >&2
	exit 1
fi

awk -v t="$todod_tps" -v p="$pg_tps" -v s="$summary" -v wc="$wrk_cmd" -v pc="$pg_cmd" 'BEGIN {
	printf "task.create via todod: %.1f tasks/s  (%s)\n", t, s
	printf "same rows via pgbench: %.1f tx/s\n", p
	printf "todod / pgbench:       %.2f\n", (p > 0 ? t / p : 0)
	printf "  command: %s\n", wc
	printf "  command: %s\n", pc
}'
