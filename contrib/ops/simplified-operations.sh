#!/usr/bin/env bash
# simplified-operations.sh - where do the events stand, and where do the
# ones that cannot be handled go?
#
# Shows, from one instance: readiness; the outbox (pending, oldest,
# published, failed); deliveries by answer (SUCCESS, RETRY, DROP) and
# Dapr job callbacks; the subscriptions daprd took, each with its
# dead-letter topic; whether the Resiliency policy is loaded; and the
# database's dead letters (`todod dlq list`, which the in-process bus and
# kafka-direct write; with Dapr they are on the broker's <topic>-dlq).
#
# --poison [TOPIC] proves the dead-letter path end to end: it publishes,
# through daprd, one CloudEvent that todod can never act on (a reminder
# without a task) to TOPIC (task-reminders), then checks that todod
# answered it DROP, which makes daprd move it to the topic's dead-letter
# topic, and that the instance is still ready.
set -euo pipefail
OPS_NAME=simplified-operations
# shellcheck source=contrib/ops/ops-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/ops-common.sh"

POISON=
TIMEOUT=60
POD_CONFIG=/etc/todod/todod.conf

usage() {
	cat <<EOF
Usage: simplified-operations.sh [--self-hosted DIR | -n NS -r RELEASE] [--poison [TOPIC]]
  --poison [TOPIC]  send one undeliverable event to TOPIC (task-reminders)
                    and check it is dead-lettered
  --timeout S       how long to wait for that (60)
  --pod-config FILE cluster: todod's configuration in the pod, for
                    'todod dlq list' (/etc/todod/todod.conf)

$OPS_COMMON_USAGE
EOF
}

own_option() {
	case "$1" in
	--poison)
		POISON=task-reminders OPS_SHIFT=1
		if [ $# -gt 1 ] && [[ "$2" != -* ]]; then
			POISON=$2 OPS_SHIFT=2
		fi
		;;
	--timeout) TIMEOUT=${2:?} OPS_SHIFT=2 ;;
	--pod-config) POD_CONFIG=${2:?} OPS_SHIFT=2 ;;
	*) OPS_SHIFT=0 ;;
	esac
}

ops_parse_options own_option "$@"

ops_connect
say "instance at $TODOD_URL${OPS_POD:+ (pod $OPS_POD)}"

status=$(http GET "$TODOD_URL/readyz")
if [ "$status" = 200 ]; then
	pass "ready"
else
	fail "not ready (HTTP $status): $(jq -c '.checks' "$OPS_TMP/body" 2>/dev/null || body | head -c 200)"
fi

fetch_metrics
[ -s "$OPS_TMP/metrics" ] || die "$TODOD_URL/metrics did not answer"
show() { printf '      %-34s %s\n' "$1" "${2:--}"; }
echo "outbox"
show "pending" "$(metric todod_outbox_pending)"
show "oldest pending (s)" "$(metric todod_outbox_oldest_age_seconds)"
show "published" "$(metric todod_outbox_published_total)"
show "publish failures (retried)" "$(metric todod_outbox_publish_failures_total)"
echo "deliveries"
drops_before=$(metric todod_dapr_deliveries_total 'status="DROP"')
if [ -n "$drops_before" ]; then
	for answer in SUCCESS RETRY DROP; do
		show "through daprd, answered $answer" "$(metric todod_dapr_deliveries_total "status=\"$answer\"")"
	done
	show "daprd publish failures" "$(metric todod_dapr_publish_failures_total)"
	show "Dapr job callbacks" "$(metric todod_dapr_job_callbacks_total)"
	show "jobs daprd did not take" "$(metric todod_dapr_job_failures_total)"
else
	show "kafka-direct dead letters" "$(metric todod_kafka_dead_letters_total)"
	show "kafka-direct consumed" "$(metric todod_kafka_consumed_total)"
fi

# ---- the sidecar's side ------------------------------------------------------------------

if [ -n "$drops_before" ]; then
	status=$(dapr_http GET /v1.0/metadata)
	if [ "$status" = 200 ]; then
		cp "$OPS_TMP/body" "$OPS_TMP/metadata"
		echo "subscriptions (topic -> dead-letter topic)"
		jq -r '.subscriptions[]? | "      \(.topic) -> \(.deadLetterTopic // "NONE")"' "$OPS_TMP/metadata"
		without=$(jq -r '[.subscriptions[]? | select((.deadLetterTopic // "") == "") | .topic] | join(", ")' "$OPS_TMP/metadata")
		if [ -z "$without" ]; then pass "every subscription has a dead-letter topic"; else fail "no dead-letter topic: $without"; fi
	else
		fail "daprd /v1.0/metadata: HTTP $status (its API token: --dapr-api-token-file)"
	fi
	if [ "$OPS_MODE" = self-hosted ]; then
		if [ -e "$OPS_DIR/dapr/resiliency.yaml" ]; then
			pass "Resiliency policy loaded from $OPS_DIR/dapr/resiliency.yaml"
		else
			fail "no resiliency.yaml in $OPS_DIR/dapr: daprd's Kafka component would retry a delivery forever"
		fi
	elif kube get resiliencies.dapr.io -o name 2>/dev/null | grep -q .; then
		pass "Resiliency policy: $(kube get resiliencies.dapr.io -o name | tr '\n' ' ')"
	else
		fail "no Resiliency in namespace $NAMESPACE"
	fi
fi

# ---- the database's dead letters ----------------------------------------------------------

echo "dead letters in the database (todod dlq list)"
if [ "$OPS_MODE" = self-hosted ]; then
	"$TODOD_BIN" -c "$TODOD_CONF" dlq list >"$OPS_TMP/dlq" 2>&1 || true
else
	kube exec "$OPS_POD" -c todod -- todod -c "$POD_CONFIG" dlq list >"$OPS_TMP/dlq" 2>&1 || true
fi
sed 's/^/      /' "$OPS_TMP/dlq"
say "replay one with 'todod dlq replay ID' (consumers that handled it skip it)"

# ---- a poison message ---------------------------------------------------------------------

if [ -n "$POISON" ]; then
	[ -n "$drops_before" ] || die "--poison needs dapr-transport (this instance has no Dapr metrics)"
	physical=$(jq -r --arg r "/dapr/events/$POISON" \
		'.subscriptions[]? | select(any(.rules[]?; .path == $r)) | .topic' "$OPS_TMP/metadata" | head -n1)
	[ -n "$physical" ] || physical=$POISON
	dlq=$(jq -r --arg t "$physical" '.subscriptions[]? | select(.topic == $t) | .deadLetterTopic' "$OPS_TMP/metadata" | head -n1)
	id="ops-poison-$(date -u +%Y%m%dT%H%M%S)-$$"
	event=$(jq -cn --arg id "$id" --arg t "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
		'{specversion: "1.0", id: $id, source: "/todod-ops/simplified-operations", type: "todod.reminder.due",
		  subject: "task/0", time: $t, datacontenttype: "application/json", data: {note: "no task: cannot be handled"}}')
	status=$(dapr_http POST "/v1.0/publish/pubsub/$physical?metadata.rawPayload=true&metadata.partitionKey=0" \
		-H 'Content-Type: application/cloudevents+json' --data-binary "$event")
	if [ "$status" != 204 ]; then
		fail "publishing the poison event to $physical: HTTP $status $(body | head -c 200)"
	else
		say "published poison event $id to $physical"
		dropped() {
			fetch_metrics
			awk -v a="$(metric todod_dapr_deliveries_total 'status="DROP"')" -v b="$drops_before" \
				'BEGIN { exit !(a > b) }'
		}
		if wait_for "$TIMEOUT" dropped; then
			pass "todod answered it DROP: daprd moved it to ${dlq:-the dead-letter topic}" \
				"(DROP count $drops_before -> $(metric todod_dapr_deliveries_total 'status="DROP"'))"
		else
			fail "the poison event was not dropped within ${TIMEOUT}s (see todod's log)"
		fi
		if wait_for 30 todod_ready; then pass "still ready after the poison event"; else fail "not ready after the poison event"; fi
	fi
fi
ops_finish
