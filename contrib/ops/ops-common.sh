# shellcheck shell=bash disable=SC2034
# (SC2034: the variables here are read by the scripts that source it.)
# ops-common.sh - what the scripts in contrib/ops share; sourced, not run.
#
# Two ways to reach a deployment:
#   cluster       (the default) a Helm release in a namespace, through
#                 kubectl: its pods are found by label, and their ports
#                 are forwarded to loopback for the HTTP checks.
#   self-hosted   --self-hosted DIR, a directory written by
#                 `setup.sh --self-hosted DIR`: DIR/ops.env says where
#                 todod and daprd listen, DIR/daprd.sh starts the sidecar.
# Either way the checks end up as HTTP calls to TODOD_URL and DAPR_URL.
#
# Output: one line per check, "ok    ..." or "FAIL  ...", then a summary;
# every check runs even when an earlier one failed.  Errors in how the
# script was called exit 2, failed checks 1.

OPS_CHECKS=0
OPS_FAILED=0
OPS_MODE=cluster
OPS_DIR=
NAMESPACE=todod
RELEASE=todod
SELECTOR=
KUBE_CONTEXT=
TODOD_PORT=8080
DAPR_PORT=3500
TODOD_URL=
DAPR_URL=
APP_ID=
PUBSUB=
TODOD_CONF=
TODOD_BIN=
COMPONENTS=
MCP_TOKEN_FILE=
DAPR_API_TOKEN_FILE=
DAPR_API_TOKEN_SECRET=
OPS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/todod-ops.XXXXXX")
OPS_FORWARD_PID=
OPS_POD=
trap ops_cleanup EXIT

ops_cleanup() {
	if [ -n "$OPS_FORWARD_PID" ]; then
		kill "$OPS_FORWARD_PID" 2>/dev/null || true
		wait "$OPS_FORWARD_PID" 2>/dev/null || true
	fi
	rm -rf "$OPS_TMP"
}

say() { printf '%s: %s\n' "$OPS_NAME" "$*"; }
die() {
	printf '%s: error: %s\n' "$OPS_NAME" "$*" >&2
	exit 2
}
pass() {
	OPS_CHECKS=$((OPS_CHECKS + 1))
	printf 'ok    %s\n' "$*"
}
fail() {
	OPS_CHECKS=$((OPS_CHECKS + 1))
	OPS_FAILED=$((OPS_FAILED + 1))
	printf 'FAIL  %s\n' "$*"
}
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is not installed (needed: $2)"; }

# The summary line and the exit status: 0 when every check passed.
ops_finish() {
	say "$OPS_CHECKS checks, $OPS_FAILED failed"
	[ "$OPS_FAILED" -eq 0 ]
}

# Options every script takes; `ops_common_option "$@"` consumes one and
# sets OPS_SHIFT to how many words it used (0: not a common option).
ops_common_option() {
	OPS_SHIFT=0
	case "$1" in
	--self-hosted) OPS_MODE=self-hosted OPS_DIR=${2:?--self-hosted needs a directory} OPS_SHIFT=2 ;;
	-n | --namespace) NAMESPACE=${2:?$1 needs a value} OPS_SHIFT=2 ;;
	-r | --release) RELEASE=${2:?$1 needs a value} OPS_SHIFT=2 ;;
	--selector) SELECTOR=${2:?$1 needs a value} OPS_SHIFT=2 ;;
	--context) KUBE_CONTEXT=${2:?$1 needs a value} OPS_SHIFT=2 ;;
	--todod-port) TODOD_PORT=${2:?$1 needs a value} OPS_SHIFT=2 ;;
	--token-file) MCP_TOKEN_FILE=${2:?$1 needs a file} OPS_SHIFT=2 ;;
	--dapr-api-token-file) DAPR_API_TOKEN_FILE=${2:?$1 needs a file} OPS_SHIFT=2 ;;
	--dapr-api-token-secret) DAPR_API_TOKEN_SECRET=${2:?$1 needs a Secret name} OPS_SHIFT=2 ;;
	esac
}

# Reads the command line: the options above, the script's own through
# OWN (called with the remaining words; it sets OPS_SHIFT to how many it
# took, 0 when the first is none of its options), and -h/--help, which
# prints the script's usage().
ops_parse_options() {
	local own=$1
	shift
	while [ $# -gt 0 ]; do
		ops_common_option "$@"
		[ "$OPS_SHIFT" -gt 0 ] || "$own" "$@"
		if [ "$OPS_SHIFT" -gt 0 ]; then
			shift "$OPS_SHIFT"
			continue
		fi
		case "$1" in
		-h | --help) usage; exit 0 ;;
		*) usage >&2; die "unknown option $1" ;;
		esac
	done
}

OPS_COMMON_USAGE="Where:
  --self-hosted DIR      a deployment configured by setup.sh --self-hosted DIR
  -n, --namespace NS     otherwise a Kubernetes release in namespace NS (todod)
  -r, --release NAME     the Helm release (todod)
      --selector SEL     its pods' label selector
                         (app.kubernetes.io/instance=RELEASE,app.kubernetes.io/name=todod)
      --context CTX      the kubectl context
      --todod-port N     todod's port in the pod (8080)
      --token-file FILE  an MCP user's API token (self-hosted: DIR/ops-token)
      --dapr-api-token-file FILE  daprd's API token (self-hosted: DIR/dapr-api-token)
      --dapr-api-token-secret NAME  or, in a cluster, the Secret holding it
                         under key \"token\" (the chart's dapr.apiTokenSecret)"

# ---- self-hosted ------------------------------------------------------------

# Reads DIR/ops.env: KEY=VALUE lines, taken as data (never run).
ops_load_self_hosted() {
	local env="$OPS_DIR/ops.env" key value
	[ -r "$env" ] || die "$env is missing: run setup.sh --self-hosted $OPS_DIR first"
	while IFS='=' read -r key value; do
		case "$key" in
		TODOD_URL | DAPR_URL | APP_ID | PUBSUB | TODOD_CONF | TODOD_BIN | COMPONENTS) printf -v "$key" '%s' "$value" ;;
		'' | '#'*) ;;
		*) die "$env: unknown key $key" ;;
		esac
	done <"$env"
	[ -n "$MCP_TOKEN_FILE" ] || MCP_TOKEN_FILE="$OPS_DIR/ops-token"
	[ -n "$DAPR_API_TOKEN_FILE" ] || DAPR_API_TOKEN_FILE="$OPS_DIR/dapr-api-token"
}

# Rewrites one KEY of DIR/ops.env.
ops_env_set() {
	local env="$OPS_DIR/ops.env"
	grep -v "^$1=" "$env" >"$env.new" || true
	printf '%s=%s\n' "$1" "$2" >>"$env.new"
	mv "$env.new" "$env"
}

# The sidecar of a self-hosted deployment: DIR/daprd.sh in its own
# session, its pid in DIR/daprd.pid (a host with systemd gives
# --stop-command and --start-command instead).
SIDECAR_STOP_COMMAND=
SIDECAR_START_COMMAND=

sidecar_stop() {
	if [ -n "$SIDECAR_STOP_COMMAND" ]; then
		bash -c "$SIDECAR_STOP_COMMAND"
		return
	fi
	local pidfile="$OPS_DIR/daprd.pid" pid i
	[ -r "$pidfile" ] || die "no $pidfile: is the sidecar running from $OPS_DIR/daprd.sh?"
	pid=$(cat "$pidfile")
	case "$pid" in '' | *[!0-9]*) die "$pidfile does not hold a process id" ;; esac
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		pid_alive "$pid" || return 0
		sleep 0.1
	done
	say "daprd did not stop within 30 s: killing it"
	kill -KILL -- "-$pid" 2>/dev/null || true
}

# Whether a process runs (an exited one its parent has not reaped yet
# does not).
pid_alive() {
	local state
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
	[ -n "$state" ] && [ "$state" != Z ]
}

sidecar_start() {
	if [ -n "$SIDECAR_START_COMMAND" ]; then
		bash -c "$SIDECAR_START_COMMAND"
		return
	fi
	setsid "$OPS_DIR/daprd.sh" >>"$OPS_DIR/daprd.log" 2>&1 </dev/null &
	echo "$!" >"$OPS_DIR/daprd.pid"
}

# ---- cluster ------------------------------------------------------------------

kube() {
	if [ -n "$KUBE_CONTEXT" ]; then
		kubectl --context "$KUBE_CONTEXT" -n "$NAMESPACE" "$@"
	else
		kubectl -n "$NAMESPACE" "$@"
	fi
}

ops_selector() {
	printf '%s' "${SELECTOR:-app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/name=todod}"
}

ops_check_cluster() {
	need kubectl "the cluster mode"
	kube get namespace "$NAMESPACE" >/dev/null 2>"$OPS_TMP/kube.err" ||
		die "cannot reach namespace $NAMESPACE: $(head -c 300 "$OPS_TMP/kube.err")"
}

# The name of one ready todod pod of the release.
ops_pod() {
	kube get pods -l "$(ops_selector)" --field-selector=status.phase=Running \
		-o jsonpath='{.items[0].metadata.name}' 2>/dev/null
}

# Forwards a pod's todod and daprd ports to loopback and points TODOD_URL
# and DAPR_URL there, for the same HTTP checks as self-hosted.
ops_forward() {
	local pod=$1 local_todod local_dapr i
	local_todod=$(ops_free_port)
	local_dapr=$(ops_free_port)
	kube port-forward "pod/$pod" "$local_todod:$TODOD_PORT" "$local_dapr:$DAPR_PORT" \
		>"$OPS_TMP/forward.log" 2>&1 &
	OPS_FORWARD_PID=$!
	for ((i = 0; i < 100; i++)); do
		if grep -q "Forwarding from.*:$local_dapr" "$OPS_TMP/forward.log"; then
			TODOD_URL="http://127.0.0.1:$local_todod"
			DAPR_URL="http://127.0.0.1:$local_dapr"
			return 0
		fi
		kill -0 "$OPS_FORWARD_PID" 2>/dev/null || break
		sleep 0.1
	done
	die "kubectl port-forward to $pod failed: $(head -c 300 "$OPS_TMP/forward.log")"
}

ops_free_port() {
	local port
	for ((port = 20000 + RANDOM % 20000; ; port++)); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
}

# ---- HTTP -----------------------------------------------------------------------

# http METHOD URL [curl options...]: prints the status; the body is in
# $OPS_TMP/body, the headers in $OPS_TMP/headers.  000 when nobody answered.
http() {
	local method=$1 url=$2
	shift 2
	: >"$OPS_TMP/body"
	: >"$OPS_TMP/headers"
	curl -sS --noproxy '*' --max-time 15 -X "$method" -o "$OPS_TMP/body" -D "$OPS_TMP/headers" \
		-w '%{http_code}' "$@" "$url" 2>"$OPS_TMP/curl.err" || true
}

body() { cat "$OPS_TMP/body"; }

# daprd's API, with its API token when there is one.
dapr_http() {
	local method=$1 path=$2
	shift 2
	if [ -n "$DAPR_API_TOKEN_FILE" ] && [ -r "$DAPR_API_TOKEN_FILE" ]; then
		http "$method" "$DAPR_URL$path" -H "@$OPS_TMP/dapr-token-header" "$@"
	else
		http "$method" "$DAPR_URL$path" "$@"
	fi
}

# Headers with secrets go to curl from a file, never on its command line.
ops_prepare_headers() {
	if [ -n "$DAPR_API_TOKEN_FILE" ] && [ -r "$DAPR_API_TOKEN_FILE" ]; then
		printf 'dapr-api-token: %s\n' "$(head -n1 "$DAPR_API_TOKEN_FILE")" >"$OPS_TMP/dapr-token-header"
	fi
	if [ -n "$MCP_TOKEN_FILE" ] && [ -r "$MCP_TOKEN_FILE" ]; then
		printf 'Authorization: Bearer %s\n' "$(head -n1 "$MCP_TOKEN_FILE")" >"$OPS_TMP/mcp-token-header"
	fi
}

# One value of /metrics: metric NAME [LABELS]; empty when absent.
metric() {
	local name=$1 labels=${2:-}
	[ -s "$OPS_TMP/metrics" ] || return 0
	if [ -n "$labels" ]; then
		awk -v want="$name{$labels}" '$1 == want { print $2; exit }' "$OPS_TMP/metrics"
	else
		awk -v want="$name" '$1 == want { print $2; exit }' "$OPS_TMP/metrics"
	fi
}

fetch_metrics() {
	local status
	status=$(http GET "$TODOD_URL/metrics")
	if [ "$status" = 200 ]; then
		cp "$OPS_TMP/body" "$OPS_TMP/metrics"
	else
		: >"$OPS_TMP/metrics"
	fi
}

# ---- MCP ------------------------------------------------------------------------------

MCP_SESSION=
MCP_PROTOCOL=2025-11-25

# mcp_post JSON: the JSON-RPC answer (from JSON or an event stream) in
# $OPS_TMP/answer; prints the HTTP status.
mcp_post() {
	local status args=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream')
	[ -r "$OPS_TMP/mcp-token-header" ] && args+=(-H "@$OPS_TMP/mcp-token-header")
	[ -n "$MCP_SESSION" ] && args+=(-H "MCP-Session-Id: $MCP_SESSION" -H "MCP-Protocol-Version: $MCP_PROTOCOL")
	status=$(http POST "$TODOD_URL/mcp" "${args[@]}" --data-binary "$1")
	if grep -qi '^content-type: text/event-stream' "$OPS_TMP/headers"; then
		sed -n 's/^data: \{0,1\}//p' "$OPS_TMP/body" | jq -c 'select(has("id"))' >"$OPS_TMP/answer" || true
	else
		cp "$OPS_TMP/body" "$OPS_TMP/answer"
	fi
	printf '%s' "$status"
}

# Opens a session (not in a subshell: it sets MCP_SESSION); the HTTP
# status of the initialize request is in MCP_STATUS.
MCP_STATUS=
mcp_open() {
	MCP_SESSION=
	MCP_STATUS=$(mcp_post "$(jq -cn --arg v "$MCP_PROTOCOL" '{jsonrpc: "2.0", id: 0, method: "initialize",
		params: {protocolVersion: $v, capabilities: {}, clientInfo: {name: "todod-ops", version: "1"}}}')")
	if [ "$MCP_STATUS" = 200 ]; then
		MCP_SESSION=$(tr -d '\r' <"$OPS_TMP/headers" | awk 'tolower($1) == "mcp-session-id:" { print $2 }')
		mcp_post '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
	fi
}

# mcp_call TOOL ARGUMENTS_JSON: the tool's structured result on stdout;
# returns 1 (the error on stdout) when the call failed.
mcp_call() {
	# Often run in $(...), where a counter would not count: the clock.
	local id=${EPOCHREALTIME/./}
	mcp_post "$(jq -cn --argjson id "$id" --arg tool "$1" --argjson args "$2" \
		'{jsonrpc: "2.0", id: $id, method: "tools/call", params: {name: $tool, arguments: $args}}')" >/dev/null
	if jq -e '.result and (.result.isError | not)' "$OPS_TMP/answer" >/dev/null 2>&1; then
		jq -c '.result.structuredContent' "$OPS_TMP/answer"
	else
		jq -c '.error // .result.structuredContent // .result.content // .' "$OPS_TMP/answer" 2>/dev/null ||
			head -c 300 "$OPS_TMP/answer"
		return 1
	fi
}

# ---- waiting ------------------------------------------------------------------------

# wait_for SECONDS COMMAND...: runs COMMAND every 0.5 s until it succeeds
# or SECONDS have passed (then returns 1).
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.5
	done
}

todod_ready() { [ "$(http GET "$TODOD_URL/readyz")" = 200 ]; }
daprd_healthy() { [ "$(http GET "$DAPR_URL/v1.0/healthz")" = 204 ]; }

# Where the deployment is, whichever mode: sets TODOD_URL and DAPR_URL.
ops_connect() {
	need curl "every check"
	need jq "reading JSON answers"
	if [ "$OPS_MODE" = self-hosted ]; then
		ops_load_self_hosted
	else
		ops_check_cluster
		local pod
		pod=$(ops_pod)
		[ -n "$pod" ] || die "no running pod with labels $(ops_selector) in namespace $NAMESPACE"
		OPS_POD=$pod
		ops_forward "$pod"
		if [ -n "$DAPR_API_TOKEN_SECRET" ]; then
			(umask 077 && kube get secret "$DAPR_API_TOKEN_SECRET" -o jsonpath='{.data.token}' |
				base64 -d >"$OPS_TMP/dapr-api-token") ||
				die "cannot read key token of Secret $DAPR_API_TOKEN_SECRET"
			DAPR_API_TOKEN_FILE=$OPS_TMP/dapr-api-token
		fi
	fi
	ops_prepare_headers
}
