#!/usr/bin/env bash
# setup.sh - prepare a todod deployment with a Dapr sidecar.
#
# Cluster (the default): checks kubectl, helm and the Dapr control plane,
# then installs or upgrades the Helm chart k8s/helm/todod as RELEASE in
# NAMESPACE with the chosen transport.  (Not exercised by the test suite,
# which has no cluster; `helm template` of the chart is tested instead.)
#
# Self-hosted (--self-hosted DIR): writes everything one todod and its
# daprd need on one machine into DIR, then checks the configuration with
# `todod -t`:
#   todod.conf        the daemon's configuration, secrets by reference
#   database-url      the DSN (0600), read as file:DIR/database-url
#   dapr-api-token    daprd's DAPR_API_TOKEN, todod's api_token (0600)
#   dapr-app-token    daprd's APP_API_TOKEN, todod's app_token (0600)
#   dapr/             daprd's resources: links to the shipped component files
#   dapr-secrets.json daprd's secret store "secretstore" (0600)
#   daprd.env         daprd's environment (0600; also a systemd EnvironmentFile)
#   daprd.sh          starts daprd with all of the above (start todod first)
#   ops.env           where the other contrib/ops scripts find it all
#   ops-token         with --ops-user: that user's MCP token (0600)
# Tokens that exist are kept, so running it again changes no secret.
set -euo pipefail
OPS_NAME=setup
# shellcheck source=contrib/ops/ops-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/ops-common.sh"

usage() {
	cat <<EOF
Usage: setup.sh [cluster options] [--transport dapr|kafka-direct|in-process] [--values FILE]
       setup.sh --self-hosted DIR --database DSN [options]

Cluster:
  --chart DIR              the chart (k8s/helm/todod of the source tree)
  --transport T            dapr (default), kafka-direct or in-process
  --values FILE            more Helm values (repeatable)

Self-hosted:
  --database DSN           libpq connection string of todod's database (required)
  --listen HOST:PORT       todod's listener, daprd's app port (127.0.0.1:8080)
  --pubsub kafka|redis     the pub/sub component to load (kafka)
  --kafka-brokers LIST     host:port[,host:port] for pubsub-kafka.yaml
  --redis-host HOST:PORT   for pubsub-redis.yaml (give both to swap later)
  --redis-password-file F  the Redis password, copied into the secret store
  --statestore-dsn DSN     the state store's database (default: --database)
  --app-id ID              Dapr app id, the consumer group (todod)
  --scheduler HOST:PORT    the Dapr scheduler (127.0.0.1:50006)
  --dapr-http-port N       (3500)    --dapr-grpc-port N (50001)
  --dapr-internal-grpc-port N (50002) --dapr-metrics-port N (9090; 0: off)
  --smtp URL               [plugin.email] server (mbox:DIR/reminders.mbox)
  --mail-from ADDRESS      [plugin.email] from (todod@localhost)
  --inbox database|dapr-state  [core] inbox (database)
  --plugin-dir DIR         [core] plugin_dir (todod's built-in default)
  --set SECTION:KEY=VALUE  any other option, e.g. plugin.reminders:scan_interval=1m
  --components DIR         the Dapr resources (the source tree's contrib/dapr,
                           else /usr/share/doc/todod/dapr)
  --todod PATH             the todod binary (todod on PATH, else /usr/sbin/todod)
  --daprd PATH             the daprd binary (daprd on PATH)
  --ops-user NAME          create that user (or renew its token) for the
                           other scripts' MCP checks; token in DIR/ops-token

$OPS_COMMON_USAGE
EOF
}

CHART="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/k8s/helm/todod"
TRANSPORT=dapr
VALUES=()
DATABASE=
LISTEN=127.0.0.1:8080
PUBSUB=kafka
KAFKA_BROKERS=
REDIS_HOST=
REDIS_PASSWORD_FILE=
STATESTORE_DSN=
APP_ID=todod
SCHEDULER=127.0.0.1:50006
DAPR_HTTP_PORT=3500
DAPR_GRPC_PORT=50001
DAPR_INTERNAL_GRPC_PORT=50002
DAPR_METRICS_PORT=9090
SMTP=
MAIL_FROM=todod@localhost
INBOX=database
PLUGIN_DIR=
SETS=()
DAPRD_BIN=
OPS_USER=

own_option() {
	OPS_SHIFT=2
	case "$1" in
	--chart) CHART=${2:?} ;;
	--transport) TRANSPORT=${2:?} ;;
	--values) VALUES+=("${2:?}") ;;
	--database) DATABASE=${2:?} ;;
	--listen) LISTEN=${2:?} ;;
	--pubsub) PUBSUB=${2:?} ;;
	--kafka-brokers) KAFKA_BROKERS=${2:?} ;;
	--redis-host) REDIS_HOST=${2:?} ;;
	--redis-password-file) REDIS_PASSWORD_FILE=${2:?} ;;
	--statestore-dsn) STATESTORE_DSN=${2:?} ;;
	--app-id) APP_ID=${2:?} ;;
	--scheduler) SCHEDULER=${2:?} ;;
	--dapr-http-port) DAPR_HTTP_PORT=${2:?} ;;
	--dapr-grpc-port) DAPR_GRPC_PORT=${2:?} ;;
	--dapr-internal-grpc-port) DAPR_INTERNAL_GRPC_PORT=${2:?} ;;
	--dapr-metrics-port) DAPR_METRICS_PORT=${2:?} ;;
	--smtp) SMTP=${2:?} ;;
	--mail-from) MAIL_FROM=${2:?} ;;
	--inbox) INBOX=${2:?} ;;
	--plugin-dir) PLUGIN_DIR=${2:?} ;;
	--set) SETS+=("${2:?}") ;;
	--components) COMPONENTS=${2:?} ;;
	--todod) TODOD_BIN=${2:?} ;;
	--daprd) DAPRD_BIN=${2:?} ;;
	--ops-user) OPS_USER=${2:?} ;;
	*) OPS_SHIFT=0 ;;
	esac
}

ops_parse_options own_option "$@"

# ---- cluster --------------------------------------------------------------------------

setup_cluster() {
	need helm "installing the chart"
	ops_check_cluster_or_create
	case "$TRANSPORT" in
	dapr)
		local crd
		for crd in components.dapr.io configurations.dapr.io resiliencies.dapr.io subscriptions.dapr.io; do
			kubectl get crd "$crd" >/dev/null 2>&1 ||
				die "CRD $crd is missing: install the Dapr control plane first (dapr init -k, or its Helm chart)"
		done
		kubectl get pods -n dapr-system >/dev/null 2>&1 || die "no Dapr control plane in namespace dapr-system"
		;;
	kafka-direct | in-process) ;;
	*) die "--transport must be dapr, kafka-direct or in-process" ;;
	esac
	[ -f "$CHART/Chart.yaml" ] || die "no chart at $CHART (give --chart)"
	local args=(upgrade --install "$RELEASE" "$CHART" --namespace "$NAMESPACE" --set "transport=$TRANSPORT" --wait)
	[ -n "$KUBE_CONTEXT" ] && args+=(--kube-context "$KUBE_CONTEXT")
	local v
	for v in "${VALUES[@]}"; do args+=(--values "$v"); done
	say "helm ${args[*]}"
	helm "${args[@]}"
	say "installed; check it with validate-deployment.sh -n $NAMESPACE -r $RELEASE"
}

ops_check_cluster_or_create() {
	need kubectl "the cluster mode"
	kube get namespace "$NAMESPACE" >/dev/null 2>&1 && return 0
	kubectl version >/dev/null 2>"$OPS_TMP/kube.err" ||
		die "cannot reach the cluster: $(head -c 300 "$OPS_TMP/kube.err")"
	say "creating namespace $NAMESPACE"
	kubectl create namespace "$NAMESPACE"
}

# ---- self-hosted ------------------------------------------------------------------------

# A file only its owner reads, written whole.
private_file() {
	local path=$1
	(umask 077 && cat >"$path.new")
	mv "$path.new" "$path"
}

new_token() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# emit KEY VALUE: one line of the section being written, unless --set
# gives that key (it is written with the section's --set lines).
declare -A SET_LINES=()
declare -A SET_KEYS=()
emit() {
	[ -n "${SET_KEYS[$SECTION|$1]:-}" ] || printf '%s = %s\n' "$1" "$2"
}
section() {
	[ -z "${SECTION:-}" ] || printf '%s\n' "${SET_LINES[$SECTION]:-}"
	SECTION=$1
	printf '[%s]\n' "$1"
}

write_config() {
	local s key value
	for s in "${SETS[@]}"; do
		[[ "$s" == *:*=* ]] || die "--set $s: give SECTION:KEY=VALUE"
		key=${s#*:} value=${key#*=} key=${key%%=*}
		SET_KEYS["${s%%:*}|$key"]=1
		SET_LINES["${s%%:*}"]+="$key = $value"$'\n'
	done
	SECTION=
	{
		echo "# Written by contrib/ops/setup.sh; secrets are files beside it."
		section core
		emit listen "$LISTEN"
		emit database "file:$OPS_DIR/database-url"
		emit state_dir "$OPS_DIR/state"
		[ -z "$PLUGIN_DIR" ] || emit plugin_dir "$PLUGIN_DIR"
		emit inbox "$INBOX"
		emit log_level info
		section plugin.mcp-tools
		emit auth token
		section plugin.reminders
		section plugin.email
		emit server "${SMTP:-mbox:$OPS_DIR/reminders.mbox}"
		emit from "$MAIL_FROM"
		section plugin.recurrence
		section plugin.dapr-transport
		emit http_endpoint "http://127.0.0.1:$DAPR_HTTP_PORT"
		emit pubsub pubsub
		emit statestore statestore
		emit api_token "file:$OPS_DIR/dapr-api-token"
		emit app_token "file:$OPS_DIR/dapr-app-token"
		emit jobs yes
		# Sections only --set names.
		local name
		for name in "${!SET_LINES[@]}"; do
			case "$name" in
			core | plugin.mcp-tools | plugin.reminders | plugin.email | plugin.recurrence | plugin.dapr-transport) ;;
			*) section "$name" ;;
			esac
		done
		section end
	} | sed '/^\[end\]$/d' >"$OPS_DIR/todod.conf.new"
	mv "$OPS_DIR/todod.conf.new" "$OPS_DIR/todod.conf"
}

# Values that go into daprd.env between single quotes must not hold one.
plain() {
	case "$2" in *"'"* | *$'\n'*) die "$1 must not contain a quote or a line break" ;; esac
	printf '%s' "$2"
}

write_sidecar() {
	local pubsub_file
	case "$PUBSUB" in
	kafka) [ -n "$KAFKA_BROKERS" ] || die "--pubsub kafka needs --kafka-brokers" ;;
	redis) [ -n "$REDIS_HOST" ] || die "--pubsub redis needs --redis-host" ;;
	*) die "--pubsub must be kafka or redis" ;;
	esac
	pubsub_file="pubsub-$PUBSUB.yaml"
	local f
	for f in "$pubsub_file" statestore-postgresql.yaml secretstore-file.yaml resiliency.yaml config.yaml; do
		[ -f "$COMPONENTS/$f" ] || die "$COMPONENTS/$f is missing (give --components)"
	done
	mkdir -p "$OPS_DIR/dapr"
	rm -f "$OPS_DIR/dapr"/*.yaml
	for f in "$pubsub_file" statestore-postgresql.yaml secretstore-file.yaml resiliency.yaml; do
		ln -s "$COMPONENTS/$f" "$OPS_DIR/dapr/$f"
	done

	local redis_password=""
	[ -z "$REDIS_PASSWORD_FILE" ] || redis_password=$(head -n1 "$REDIS_PASSWORD_FILE")
	jq -n --arg dsn "${STATESTORE_DSN:-$DATABASE}" --arg redis "$redis_password" \
		'{"todod-statestore-dsn": $dsn, "todod-redis-password": $redis}' | private_file "$OPS_DIR/dapr-secrets.json"

	{
		echo "TODOD_DAPR_SECRETS_FILE='$(plain directory "$OPS_DIR")/dapr-secrets.json'"
		[ -z "$KAFKA_BROKERS" ] || echo "TODOD_KAFKA_BROKERS='$(plain --kafka-brokers "$KAFKA_BROKERS")'"
		[ -z "$REDIS_HOST" ] || echo "TODOD_REDIS_HOST='$(plain --redis-host "$REDIS_HOST")'"
		echo "DAPR_API_TOKEN='$(head -n1 "$OPS_DIR/dapr-api-token")'"
		echo "APP_API_TOKEN='$(head -n1 "$OPS_DIR/dapr-app-token")'"
	} | private_file "$OPS_DIR/daprd.env"

	local metrics="--enable-metrics=false"
	[ "$DAPR_METRICS_PORT" = 0 ] || metrics="--metrics-port $DAPR_METRICS_PORT"
	local port=${LISTEN##*:}
	cat >"$OPS_DIR/daprd.sh.new" <<EOF
#!/bin/sh
# daprd for the todod configured in $OPS_DIR (written by contrib/ops/setup.sh).
# Start todod first: daprd waits until the app port accepts.
set -eu
set -a
. '$OPS_DIR/daprd.env'
set +a
cd '$OPS_DIR'
exec '$DAPRD_BIN' --app-id '$APP_ID' --app-port $port --app-channel-address 127.0.0.1 \\
	--dapr-listen-addresses 127.0.0.1 --dapr-http-port $DAPR_HTTP_PORT \\
	--dapr-grpc-port $DAPR_GRPC_PORT --dapr-internal-grpc-port $DAPR_INTERNAL_GRPC_PORT \\
	--dapr-internal-grpc-listen-address 127.0.0.1 $metrics \\
	--resources-path '$OPS_DIR/dapr' --config '$COMPONENTS/config.yaml' \\
	--scheduler-host-address '$SCHEDULER' --placement-host-address '' --log-level info
EOF
	chmod 0700 "$OPS_DIR/daprd.sh.new"
	mv "$OPS_DIR/daprd.sh.new" "$OPS_DIR/daprd.sh"
}

setup_self_hosted() {
	[ -n "$DATABASE" ] || die "--self-hosted needs --database"
	case "$INBOX" in database | dapr-state) ;; *) die "--inbox must be database or dapr-state" ;; esac
	need jq "writing the secret store"
	if [ -z "$COMPONENTS" ]; then
		COMPONENTS="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/dapr"
		[ -f "$COMPONENTS/pubsub-kafka.yaml" ] || COMPONENTS=/usr/share/doc/todod/dapr
	fi
	COMPONENTS=$(cd "$COMPONENTS" && pwd)
	[ -n "$TODOD_BIN" ] || TODOD_BIN=$(command -v todod || echo /usr/sbin/todod)
	[ -x "$TODOD_BIN" ] || die "no todod at $TODOD_BIN (give --todod)"
	[ -n "$DAPRD_BIN" ] || DAPRD_BIN=$(command -v daprd || true)
	if [ -z "$DAPRD_BIN" ] || [ ! -x "$DAPRD_BIN" ]; then die "no daprd (give --daprd)"; fi

	mkdir -p "$OPS_DIR/state"
	OPS_DIR=$(cd "$OPS_DIR" && pwd)
	chmod 0700 "$OPS_DIR"
	printf '%s\n' "$DATABASE" | private_file "$OPS_DIR/database-url"
	local token
	for token in dapr-api-token dapr-app-token; do
		if [ -s "$OPS_DIR/$token" ]; then
			say "keeping $OPS_DIR/$token"
		else
			new_token | private_file "$OPS_DIR/$token"
			say "wrote a new $OPS_DIR/$token"
		fi
	done
	write_config
	write_sidecar
	cat >"$OPS_DIR/ops.env" <<EOF
TODOD_URL=http://${LISTEN}
DAPR_URL=http://127.0.0.1:$DAPR_HTTP_PORT
APP_ID=$APP_ID
PUBSUB=$PUBSUB
TODOD_CONF=$OPS_DIR/todod.conf
TODOD_BIN=$TODOD_BIN
COMPONENTS=$COMPONENTS
EOF
	say "wrote $OPS_DIR/todod.conf, $OPS_DIR/dapr/ ($PUBSUB), $OPS_DIR/daprd.sh"

	if ! "$TODOD_BIN" -t -c "$OPS_DIR/todod.conf" >"$OPS_TMP/check" 2>&1; then
		cat "$OPS_TMP/check" >&2
		die "todod -t refused $OPS_DIR/todod.conf"
	fi
	say "todod -t: $OPS_DIR/todod.conf is valid"

	if [ -n "$OPS_USER" ]; then
		"$TODOD_BIN" -c "$OPS_DIR/todod.conf" migrate >/dev/null 2>"$OPS_TMP/err" ||
			die "todod migrate: $(head -c 300 "$OPS_TMP/err")"
		local cmd=(user add "$OPS_USER" --email "$OPS_USER@localhost")
		if "$TODOD_BIN" -c "$OPS_DIR/todod.conf" user list 2>/dev/null | awk '{ print $2 }' | grep -qx "$OPS_USER"; then
			cmd=(user token "$OPS_USER")
		fi
		"$TODOD_BIN" -c "$OPS_DIR/todod.conf" "${cmd[@]}" 2>"$OPS_TMP/err" | tail -n1 |
			private_file "$OPS_DIR/ops-token" || die "todod ${cmd[*]}: $(head -c 300 "$OPS_TMP/err")"
		[ -s "$OPS_DIR/ops-token" ] || die "todod ${cmd[*]} printed no token: $(head -c 300 "$OPS_TMP/err")"
		say "user $OPS_USER's MCP token is in $OPS_DIR/ops-token"
	fi
	say "next: start todod -c $OPS_DIR/todod.conf, then $OPS_DIR/daprd.sh;" \
		"check with validate-deployment.sh --self-hosted $OPS_DIR"
}

if [ "$OPS_MODE" = self-hosted ]; then
	setup_self_hosted
else
	setup_cluster
fi
