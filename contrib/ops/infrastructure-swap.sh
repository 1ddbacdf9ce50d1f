#!/usr/bin/env bash
# infrastructure-swap.sh - move the event backbone between Kafka and Redis
# Streams without touching todod.
#
# Both pub/sub files of contrib/dapr declare the component "pubsub", so
# todod's configuration stays as it is; only the sidecar's component
# changes, and the sidecar restarts:
#   self-hosted  stop daprd, replace the pubsub-*.yaml link in DIR/dapr by
#                the other file, start daprd, wait for daprd and todod
#   cluster      helm upgrade the release with dapr.pubsub.backend=BACKEND
#                (the chart renders the component "pubsub" with its scopes),
#                or, given --component-file, kubectl apply that file; then
#                a rolling restart of the release's pods (each sidecar
#                loads components when it starts), wait for the rollout.
#                Not exercised by the test suite (no cluster there).
# then runs validate-deployment.sh, which must find the new pub/sub.
#
# Events todod has not published yet wait in its outbox while the sidecar
# is away and go to the new broker.  Events already on the old broker but
# not yet delivered stay there: the script waits (up to --settle) for the
# outbox to be empty and says how many were pending.
set -euo pipefail
OPS_NAME=infrastructure-swap
HERE=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=contrib/ops/ops-common.sh
. "$HERE/ops-common.sh"

TO=
COMPONENT_FILE=
CHART="$(cd "$HERE/../.." && pwd)/k8s/helm/todod"
SETTLE=60

usage() {
	cat <<EOF
Usage: infrastructure-swap.sh --to kafka|redis [--self-hosted DIR | -n NS -r RELEASE] [options]
  --to kafka|redis        the pub/sub to move to
  --chart DIR             cluster: the release's chart (k8s/helm/todod of the
                          source tree), upgraded with --reuse-values
  --component-file FILE   cluster: kubectl apply this component instead of
                          upgrading the chart (e.g. contrib/dapr/pubsub-redis.yaml)
  --stop-command CMD      self-hosted: how to stop daprd (default: its
                          pid in DIR/daprd.pid), e.g. 'systemctl stop todod-daprd'
  --start-command CMD     self-hosted: how to start it (default: DIR/daprd.sh)
  --settle S              wait up to S seconds for the outbox to empty first (60)

$OPS_COMMON_USAGE
EOF
}

own_option() {
	case "$1" in
	--to) TO=${2:?} OPS_SHIFT=2 ;;
	--component-file) COMPONENT_FILE=${2:?} OPS_SHIFT=2 ;;
	--chart) CHART=${2:?} OPS_SHIFT=2 ;;
	--stop-command) SIDECAR_STOP_COMMAND=${2:?} OPS_SHIFT=2 ;;
	--start-command) SIDECAR_START_COMMAND=${2:?} OPS_SHIFT=2 ;;
	--settle) SETTLE=${2:?} OPS_SHIFT=2 ;;
	*) OPS_SHIFT=0 ;;
	esac
}

ops_parse_options own_option "$@"
case "$TO" in kafka | redis) ;; *) usage >&2; die "give --to kafka or --to redis" ;; esac

ops_connect

outbox_empty() {
	fetch_metrics
	[ "$(metric todod_outbox_pending)" = 0 ]
}
if wait_for "$SETTLE" outbox_empty; then
	say "the outbox is empty: nothing waits to be published"
else
	say "$(metric todod_outbox_pending) event(s) still pending; they wait in the outbox and go to the new broker"
fi

started=$SECONDS
if [ "$OPS_MODE" = self-hosted ]; then
	[ -f "$COMPONENTS/pubsub-$TO.yaml" ] || die "$COMPONENTS/pubsub-$TO.yaml is missing"
	case "$TO" in
	kafka) grep -q '^TODOD_KAFKA_BROKERS=' "$OPS_DIR/daprd.env" || die "daprd.env has no TODOD_KAFKA_BROKERS: run setup.sh again with --kafka-brokers" ;;
	redis) grep -q '^TODOD_REDIS_HOST=' "$OPS_DIR/daprd.env" || die "daprd.env has no TODOD_REDIS_HOST: run setup.sh again with --redis-host" ;;
	esac
	from=$PUBSUB
	say "stopping daprd (pub/sub: $from)"
	sidecar_stop
	say "daprd stopped ($((SECONDS - started))s)"
	rm -f "$OPS_DIR"/dapr/pubsub-*.yaml
	ln -s "$COMPONENTS/pubsub-$TO.yaml" "$OPS_DIR/dapr/pubsub-$TO.yaml"
	ops_env_set PUBSUB "$TO"
	say "starting daprd with $OPS_DIR/dapr/pubsub-$TO.yaml"
	sidecar_start
	if wait_for 90 daprd_healthy; then pass "daprd is back ($((SECONDS - started))s)"; else fail "daprd /v1.0/healthz not 204 after 90s (see $OPS_DIR/daprd.log)"; fi
else
	if [ -n "$COMPONENT_FILE" ]; then
		[ -r "$COMPONENT_FILE" ] || die "cannot read $COMPONENT_FILE"
		say "applying $COMPONENT_FILE in namespace $NAMESPACE"
		kube apply -f "$COMPONENT_FILE"
	else
		need helm "upgrading the release"
		[ -f "$CHART/Chart.yaml" ] || die "no chart at $CHART (give --chart, or --component-file)"
		upgrade=(upgrade "$RELEASE" "$CHART" --namespace "$NAMESPACE" --reuse-values
			--set "dapr.pubsub.backend=$TO" --wait)
		[ -z "$KUBE_CONTEXT" ] || upgrade+=(--kube-context "$KUBE_CONTEXT")
		say "helm ${upgrade[*]}"
		helm "${upgrade[@]}"
	fi
	say "restarting the pods of $RELEASE, one at a time"
	deployments=$(kube get deployments -l "$(ops_selector)" -o name)
	[ -n "$deployments" ] || die "no deployment with labels $(ops_selector)"
	for d in $deployments; do
		kube rollout restart "$d"
		if kube rollout status "$d" --timeout=600s; then pass "$d restarted"; else fail "$d did not finish its rollout"; fi
	done
	# The pods changed: forward to a new one.
	kill "$OPS_FORWARD_PID" 2>/dev/null || true
	OPS_POD=$(ops_pod)
	ops_forward "$OPS_POD"
fi
if wait_for 90 todod_ready; then
	pass "todod ready again $((SECONDS - started))s after the sidecar stopped"
else
	fail "todod not ready 90s after the swap: $(body | head -c 300)"
fi

validate=("$HERE/validate-deployment.sh" --expect-pubsub "$TO")
if [ "$OPS_MODE" = self-hosted ]; then
	validate+=(--self-hosted "$OPS_DIR")
else
	validate+=(-n "$NAMESPACE" -r "$RELEASE")
	[ -z "$SELECTOR" ] || validate+=(--selector "$SELECTOR")
	[ -z "$KUBE_CONTEXT" ] || validate+=(--context "$KUBE_CONTEXT")
fi
[ -z "$MCP_TOKEN_FILE" ] || validate+=(--token-file "$MCP_TOKEN_FILE")
[ -z "$DAPR_API_TOKEN_FILE" ] || validate+=(--dapr-api-token-file "$DAPR_API_TOKEN_FILE")
say "running validate-deployment.sh"
if "${validate[@]}"; then pass "the deployment validates on $TO"; else fail "validate-deployment failed after the swap"; fi
ops_finish
