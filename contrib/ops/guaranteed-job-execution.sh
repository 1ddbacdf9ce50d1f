#!/usr/bin/env bash
# guaranteed-job-execution.sh - do reminders fire, once each?
#
# Creates N tasks over MCP whose reminders are due LEAD seconds from now,
# waits until each is fired (get_task: reminder_state "fired"), and,
# given where the mail lands (--mail-dir, --mbox), checks that each
# reminder was mailed exactly once.  With dapr-transport it also shows
# that the Dapr scheduler called the jobs back
# (todod_dapr_job_callbacks_total).  Cluster mode first reports how many
# replicas run (every one competes for each reminder; the database lets
# one claim it) and reads the callbacks of the forwarded pod.  The tasks
# are deleted at the end unless --keep.
set -euo pipefail
OPS_NAME=guaranteed-job-execution
# shellcheck source=contrib/ops/ops-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/ops-common.sh"

COUNT=5
LEAD=20
TIMEOUT=120
MAIL_DIR=
MBOX=
KEEP=

usage() {
	cat <<EOF
Usage: guaranteed-job-execution.sh [--self-hosted DIR | -n NS -r RELEASE] [options]
  --count N        reminders to create (5)
  --lead SECONDS   how far ahead they are due (20)
  --timeout S      how long to wait for them after they are due (120)
  --mail-dir DIR   a directory where the mail server keeps one file per message
  --mbox FILE      or the mbox file of [plugin.email] server = mbox:FILE
                   (self-hosted default: DIR/reminders.mbox when it is used)
  --keep           keep the tasks (else they are deleted)

$OPS_COMMON_USAGE
EOF
}

own_option() {
	case "$1" in
	--count) COUNT=${2:?} OPS_SHIFT=2 ;;
	--lead) LEAD=${2:?} OPS_SHIFT=2 ;;
	--timeout) TIMEOUT=${2:?} OPS_SHIFT=2 ;;
	--mail-dir) MAIL_DIR=${2:?} OPS_SHIFT=2 ;;
	--mbox) MBOX=${2:?} OPS_SHIFT=2 ;;
	--keep) KEEP=1 OPS_SHIFT=1 ;;
	*) OPS_SHIFT=0 ;;
	esac
}

ops_parse_options own_option "$@"
case "$COUNT$LEAD$TIMEOUT" in *[!0-9]*) die "--count, --lead and --timeout take whole numbers" ;; esac

ops_connect
[ -r "$OPS_TMP/mcp-token-header" ] || die "no MCP token: give --token-file"
if [ "$OPS_MODE" = self-hosted ] && [ -z "$MAIL_DIR$MBOX" ] &&
	grep -q "^server = mbox:$OPS_DIR/reminders.mbox$" "$TODOD_CONF"; then
	MBOX="$OPS_DIR/reminders.mbox"
fi
if [ "$OPS_MODE" = cluster ]; then
	replicas=$(kube get pods -l "$(ops_selector)" --field-selector=status.phase=Running -o name | wc -l)
	say "$replicas replica(s) of $RELEASE compete for each reminder; pod $OPS_POD is watched"
fi

mcp_open
[ "$MCP_STATUS" = 200 ] || die "MCP initialize failed: $(head -c 300 "$OPS_TMP/body")"
fetch_metrics
callbacks_before=$(metric todod_dapr_job_callbacks_total)

run="ops-check $(date -u +%Y%m%dT%H%M%S)-$$"
due=$(date -u -d "@$(($(date +%s) + LEAD))" +%Y-%m-%dT%H:%M:%SZ)
ids=()
for ((i = 1; i <= COUNT; i++)); do
	task=$(jq -cn --arg t "$run $i" --arg at "$due" '{title: $t, remind_at: $at}')
	answer=$(mcp_call add_task "$task") || die "add_task: $answer"
	ids+=("$(jq -r '.task.id' <<<"$answer")")
done
say "created $COUNT tasks \"$run 1..$COUNT\" with reminders due at $due"

# reminder_state of a task; "gone" when it cannot be read.
state_of() {
	local answer
	answer=$(mcp_call get_task "{\"task_id\": $1}") || {
		echo gone
		return
	}
	jq -r '.task.reminder_state' <<<"$answer"
}

pending=("${ids[@]}")
all_fired() {
	local id still=()
	for id in "${pending[@]}"; do
		[ "$(state_of "$id")" = fired ] || still+=("$id")
	done
	pending=("${still[@]+"${still[@]}"}")
	[ "${#pending[@]}" -eq 0 ]
}
if wait_for $((LEAD + TIMEOUT)) all_fired; then
	pass "$COUNT of $COUNT reminders fired (each task's reminder_state is fired)"
else
	fail "$((COUNT - ${#pending[@]})) of $COUNT reminders fired; not fired: tasks ${pending[*]}"
fi

# Mails per subject, from one file per message or an mbox.
mails_of() {
	local pattern="^Subject: Reminder: $1"$'\r'"?\$"
	if [ -n "$MAIL_DIR" ]; then
		find "$MAIL_DIR" -type f -exec grep -hcE "$pattern" {} + 2>/dev/null | awk '{ n += $1 } END { print n + 0 }'
	else
		grep -cE "$pattern" "$MBOX" 2>/dev/null || true
	fi
}
all_mailed() {
	local i
	for ((i = 1; i <= COUNT; i++)); do
		[ "$(mails_of "$run $i")" -ge 1 ] || return 1
	done
}
if [ -n "$MAIL_DIR$MBOX" ]; then
	wait_for "$TIMEOUT" all_mailed || true
	# A second mail would come right behind the first: give it a moment.
	sleep 2
	once=0 report=()
	for ((i = 1; i <= COUNT; i++)); do
		n=$(mails_of "$run $i")
		if [ "$n" -eq 1 ]; then once=$((once + 1)); else report+=("\"$run $i\": $n mails"); fi
	done
	if [ "$once" -eq "$COUNT" ]; then
		pass "$COUNT of $COUNT reminders mailed exactly once (${MAIL_DIR:-$MBOX})"
	else
		fail "mailed once: $once of $COUNT; ${report[*]}"
	fi
else
	say "no --mail-dir or --mbox: the mails themselves are not counted"
fi

fetch_metrics
callbacks_after=$(metric todod_dapr_job_callbacks_total)
if [ -n "$callbacks_after" ]; then
	calls=$(awk -v a="$callbacks_after" -v b="${callbacks_before:-0}" 'BEGIN { print a - b }')
	if awk -v c="$calls" 'BEGIN { exit !(c > 0) }'; then
		pass "the Dapr scheduler called $calls job(s) back on this instance meanwhile"
	elif [ "$OPS_MODE" = cluster ]; then
		say "no job callback on pod $OPS_POD (another replica may have taken them)"
	else
		fail "no Dapr job callback while the reminders fired (jobs = no, or the scheduler is down?)"
	fi
fi

if [ -z "$KEEP" ]; then
	for id in "${ids[@]}"; do
		mcp_call delete_task "{\"task_id\": $id}" >/dev/null || say "could not delete task $id"
	done
	say "deleted the $COUNT tasks"
fi
ops_finish
