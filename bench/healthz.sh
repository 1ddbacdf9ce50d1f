#!/bin/sh
# healthz.sh - HTTP throughput and latency of the cheapest route.
#   bench/healthz.sh http://127.0.0.1:8080
# DURATION (seconds), CONNECTIONS and THREADS override wrk's -d, -c and -t.
set -eu
base=${1:?usage: $0 BASE_URL (e.g. http://127.0.0.1:8080)}
cmd="wrk -t${THREADS:-2} -c${CONNECTIONS:-50} -d${DURATION:-10}s --latency $base/healthz"
out=$($cmd)
echo "$out" | awk -v cmd="$cmd" '
	/Requests\/sec:/ { rps = $2 }
	$1 == "50%" { p50 = $2 }
	$1 == "99%" { p99 = $2 }
	/Non-2xx or 3xx responses:/ { bad = $NF }
	/Socket errors:/ { sub(/^ */, ""); errors = $0 }
	END {
		printf "healthz: %s req/s  p50 %s  p99 %s  non-2xx %d%s\n", rps, p50, p99, bad, \
			errors ? "  (" errors ")" : ""
		printf "  command: %s\n", cmd
	}'
