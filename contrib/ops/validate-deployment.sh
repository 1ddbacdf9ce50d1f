#!/usr/bin/env bash
# validate-deployment.sh - is this todod deployment working?
#
# Runs every check and reports each (ok/FAIL), then exits 1 if any
# failed.  Cluster mode first checks what Kubernetes shows (the Dapr
# control plane, the components, every pod ready with its daprd), then
# forwards one pod's ports; both modes then ask over HTTP:
#   todod   /healthz 200; /readyz 200 (else every reason it gives);
#           /mcp answers 401 without a token, and lists the 18 tools
#           with one; /metrics (the outbox's depth and age)
#   daprd   /v1.0/healthz 204; /v1.0/metadata: the components pubsub,
#           statestore and secretstore, and todod's subscriptions, each
#           with its dead-letter topic
set -euo pipefail
OPS_NAME=validate-deployment
# shellcheck source=contrib/ops/ops-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/ops-common.sh"

EXPECT_TOOLS=18
EXPECT_PUBSUB=

usage() {
	cat <<EOF
Usage: validate-deployment.sh [--self-hosted DIR | -n NS -r RELEASE] [options]
  --expect-tools N        the number of MCP tools (18)
  --expect-pubsub TYPE    kafka or redis: the pub/sub component's type
                          (self-hosted: what setup or the last swap loaded)

$OPS_COMMON_USAGE
EOF
}

own_option() {
	case "$1" in
	--expect-tools) EXPECT_TOOLS=${2:?} OPS_SHIFT=2 ;;
	--expect-pubsub) EXPECT_PUBSUB=${2:?} OPS_SHIFT=2 ;;
	*) OPS_SHIFT=0 ;;
	esac
}

ops_parse_options own_option "$@"

# ---- what Kubernetes shows --------------------------------------------------------

check_cluster() {
	local app crd n ready total
	for app in dapr-operator dapr-sidecar-injector dapr-scheduler-server; do
		n=$(kubectl get pods -n dapr-system -l "app=$app" --field-selector=status.phase=Running \
			-o name 2>/dev/null | wc -l)
		if [ "$n" -gt 0 ]; then pass "dapr-system: $app running ($n)"; else fail "dapr-system: no running $app"; fi
	done
	for crd in components.dapr.io configurations.dapr.io resiliencies.dapr.io subscriptions.dapr.io; do
		if kubectl get crd "$crd" >/dev/null 2>&1; then pass "CRD $crd"; else fail "CRD $crd is missing"; fi
	done
	total=$(kube get pods -l "$(ops_selector)" -o name | wc -l)
	ready=$(kube get pods -l "$(ops_selector)" \
		-o jsonpath='{range .items[*]}{.status.containerStatuses[*].ready}{"\n"}{end}' |
		grep -vc false || true)
	if [ "$total" -gt 0 ] && [ "$ready" -eq "$total" ]; then
		pass "pods $(ops_selector): $ready of $total ready"
	else
		fail "pods $(ops_selector): $ready of $total ready"
	fi
	if kube get pod "$OPS_POD" -o jsonpath='{.spec.containers[*].name}' | tr ' ' '\n' | grep -qx daprd; then
		pass "pod $OPS_POD has its daprd sidecar"
	else
		fail "pod $OPS_POD has no daprd container (dapr.io/enabled annotation, sidecar injector?)"
	fi
}

# ---- todod ---------------------------------------------------------------------------

TRANSPORT=

check_todod() {
	local status reason
	status=$(http GET "$TODOD_URL/healthz")
	if [ "$status" = 200 ]; then pass "todod /healthz"; else fail "todod /healthz: HTTP $status $(head -c 200 "$OPS_TMP/curl.err")"; fi

	status=$(http GET "$TODOD_URL/readyz")
	if [ "$status" = 200 ]; then
		pass "todod /readyz: ready ($(jq -r '.checks | to_entries | map("\(.key)=\(.value)") | join(", ")' "$OPS_TMP/body"))"
	elif [ "$status" = 503 ]; then
		while IFS= read -r reason; do
			fail "todod /readyz: $reason"
		done < <(jq -r '.checks | to_entries[] | select(.value != "ok" and .value != "in-process") | "\(.key): \(.value)"' "$OPS_TMP/body")
	else
		fail "todod /readyz: HTTP $status"
	fi
	if jq -e '.checks["dapr-transport"]' "$OPS_TMP/body" >/dev/null 2>&1; then
		TRANSPORT=dapr-transport
	elif jq -e '.checks["kafka-direct"]' "$OPS_TMP/body" >/dev/null 2>&1; then
		TRANSPORT=kafka-direct
	else
		TRANSPORT=in-process
	fi

	local saved=$OPS_TMP/mcp-token-header
	[ -r "$saved" ] && mv "$saved" "$saved.off"
	mcp_open
	[ -r "$saved.off" ] && mv "$saved.off" "$saved"
	if [ "$MCP_STATUS" = 401 ]; then pass "todod /mcp refuses a client without a token (401)"; else fail "todod /mcp without a token: HTTP $MCP_STATUS, not 401"; fi

	if [ ! -r "$saved" ]; then
		fail "todod /mcp tools/list: no MCP token (give --token-file)"
	else
		mcp_open
		if [ "$MCP_STATUS" != 200 ]; then
			fail "todod /mcp initialize: HTTP $MCP_STATUS $(head -c 200 "$OPS_TMP/body")"
		else
			# tools/list comes in pages: follow nextCursor.
			local n=0 page=0 params='{}' cursor
			while [ "$page" -lt 20 ]; do
				page=$((page + 1))
				mcp_post "{\"jsonrpc\":\"2.0\",\"id\":$page,\"method\":\"tools/list\",\"params\":$params}" >/dev/null
				n=$((n + $(jq '.result.tools | length' "$OPS_TMP/answer" 2>/dev/null || echo 0)))
				cursor=$(jq -r '.result.nextCursor // empty' "$OPS_TMP/answer" 2>/dev/null || true)
				[ -n "$cursor" ] || break
				params=$(jq -cn --arg c "$cursor" '{cursor: $c}')
			done
			if [ "$n" = "$EXPECT_TOOLS" ]; then
				pass "todod /mcp tools/list: $n tools"
			else
				fail "todod /mcp tools/list: $n tools, not $EXPECT_TOOLS"
			fi
		fi
	fi

	fetch_metrics
	if [ -s "$OPS_TMP/metrics" ]; then
		pass "todod /metrics: outbox pending $(metric todod_outbox_pending), oldest $(metric todod_outbox_oldest_age_seconds)s, transport $TRANSPORT"
	else
		fail "todod /metrics did not answer"
	fi
}

# ---- daprd ---------------------------------------------------------------------------

check_daprd() {
	local status
	status=$(http GET "$DAPR_URL/v1.0/healthz")
	if [ "$status" = 204 ]; then pass "daprd /v1.0/healthz"; else fail "daprd /v1.0/healthz: HTTP $status $(head -c 200 "$OPS_TMP/curl.err")"; fi

	status=$(dapr_http GET /v1.0/metadata)
	if [ "$status" != 200 ]; then
		fail "daprd /v1.0/metadata: HTTP $status $(body | head -c 200) (its API token: --dapr-api-token-file)"
		return
	fi
	cp "$OPS_TMP/body" "$OPS_TMP/metadata"
	local name type
	for name in pubsub statestore secretstore; do
		type=$(jq -r --arg n "$name" '.components[]? | select(.name == $n) | "\(.type)/\(.version)"' "$OPS_TMP/metadata")
		if [ -n "$type" ]; then pass "daprd component $name: $type"; else fail "daprd has no component $name"; fi
	done
	if [ -n "$EXPECT_PUBSUB" ]; then
		type=$(jq -r '.components[]? | select(.name == "pubsub") | .type' "$OPS_TMP/metadata")
		if [ "$type" = "pubsub.$EXPECT_PUBSUB" ]; then
			pass "the pub/sub is $EXPECT_PUBSUB"
		else
			fail "the pub/sub is ${type:-missing}, not pubsub.$EXPECT_PUBSUB"
		fi
	fi
	local subs without
	subs=$(jq '[.subscriptions[]? | select(.pubsubname == "pubsub")] | length' "$OPS_TMP/metadata")
	without=$(jq -r '[.subscriptions[]? | select((.deadLetterTopic // "") == "") | .topic] | join(", ")' "$OPS_TMP/metadata")
	if [ "$subs" -gt 0 ] && [ -z "$without" ]; then
		pass "daprd took $subs subscriptions from todod: $(jq -r '[.subscriptions[] | "\(.topic) (dead letters: \(.deadLetterTopic))"] | join(", ")' "$OPS_TMP/metadata")"
	elif [ "$subs" -eq 0 ]; then
		fail "daprd has no subscriptions from todod (was todod listening when daprd started?)"
	else
		fail "subscriptions without a dead-letter topic: $without"
	fi
}

ops_connect
[ "$OPS_MODE" = self-hosted ] && [ -z "$EXPECT_PUBSUB" ] && EXPECT_PUBSUB=$PUBSUB
say "todod at $TODOD_URL${OPS_POD:+ (pod $OPS_POD)}"
[ "$OPS_MODE" = cluster ] && check_cluster
check_todod
if [ "$TRANSPORT" = dapr-transport ]; then
	say "daprd at $DAPR_URL"
	check_daprd
fi
ops_finish
