{{/* Names, labels and the small computations the templates share. */}}

{{- define "todod.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "todod.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "todod.selectorLabels" -}}
app.kubernetes.io/name: {{ include "todod.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "todod.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "todod.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: todod
{{- end -}}

{{- define "todod.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "todod.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "todod.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The transport, checked once for every template that includes it. */}}
{{- define "todod.transport" -}}
{{- $t := .Values.transport -}}
{{- if not (has $t (list "in-process" "kafka-direct" "dapr")) -}}
{{- fail (printf "transport must be in-process, kafka-direct or dapr, not %q" $t) -}}
{{- end -}}
{{- if and (eq $t "in-process") (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) -}}
{{- fail "transport in-process serves one replica: set replicaCount 1 and autoscaling.enabled false, or choose kafka-direct or dapr" -}}
{{- end -}}
{{- $t -}}
{{- end -}}

{{/* A todod.conf duration (500ms, 20s, 5m, 1h, 1d, a bare number of
     seconds) in whole seconds, rounded up. */}}
{{- define "todod.durationSeconds" -}}
{{- $d := toString . -}}
{{- if regexMatch "^[0-9]+$" $d -}}{{ $d }}
{{- else if regexMatch "^[0-9]+ms$" $d -}}{{ div (add (trimSuffix "ms" $d | int) 999) 1000 }}
{{- else if regexMatch "^[0-9]+s$" $d -}}{{ trimSuffix "s" $d | int }}
{{- else if regexMatch "^[0-9]+m$" $d -}}{{ mul (trimSuffix "m" $d | int) 60 }}
{{- else if regexMatch "^[0-9]+h$" $d -}}{{ mul (trimSuffix "h" $d | int) 3600 }}
{{- else if regexMatch "^[0-9]+d$" $d -}}{{ mul (trimSuffix "d" $d | int) 86400 }}
{{- else -}}{{ fail (printf "%q is not a todod.conf duration (like 20s or 500ms)" $d) }}
{{- end -}}
{{- end -}}

{{/* drain_timeout as configured, 10s (todod's default) when unset. */}}
{{- define "todod.drainSeconds" -}}
{{- $d := "10s" -}}
{{- if hasKey .Values.config.core "drain_timeout" -}}{{- if not (kindIs "invalid" .Values.config.core.drain_timeout) -}}{{- $d = .Values.config.core.drain_timeout -}}{{- end -}}{{- end -}}
{{- include "todod.durationSeconds" $d -}}
{{- end -}}

{{/* One todod.conf value: bools as yes/no, lists joined with ", ",
     anything holding # or " or \ or blanks at its ends quoted. */}}
{{- define "todod.confValue" -}}
{{- $v := . -}}
{{- if kindIs "bool" $v -}}{{ ternary "yes" "no" $v }}
{{- else if kindIs "slice" $v -}}{{ join ", " $v }}
{{- else if kindIs "float64" $v -}}{{ int64 $v }}
{{- else -}}
{{- $s := toString $v -}}
{{- if or (contains "#" $s) (contains "\"" $s) (contains "\\" $s) (ne $s (trim $s)) -}}
"{{ $s | replace "\\" "\\\\" | replace "\"" "\\\"" }}"
{{- else -}}{{ $s }}{{- end -}}
{{- end -}}
{{- end -}}

{{/* The keys of a map as `key = value` lines, sorted, nulls left out;
     a line break in a value is refused (todod.conf has one line per key). */}}
{{- define "todod.confKeys" -}}
{{- range $k, $v := . }}
{{- if not (kindIs "invalid" $v) }}
{{- $line := include "todod.confValue" $v }}
{{- if contains "\n" $line }}{{ fail (printf "todod.conf key %s: a value cannot span lines" $k) }}{{ end }}
{{ $k }} = {{ $line }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The Secrets the Dapr sidecar may read through the kubernetes secret
     store: the components' and those todod names (dapr.secretNames). */}}
{{- define "todod.daprSecretNames" -}}
{{- $d := .Values.dapr -}}
{{- $names := list -}}
{{- if $d.statestore.enabled }}{{ $names = append $names $d.statestore.dsnSecret }}{{ end -}}
{{- if eq $d.pubsub.backend "redis" }}{{ $names = append $names $d.pubsub.redis.passwordSecret }}{{ end -}}
{{- if and (eq $d.pubsub.backend "kafka") $d.pubsub.kafka.sasl.enabled }}{{ $names = append $names $d.pubsub.kafka.sasl.passwordSecret }}{{ end -}}
{{- range $d.secretNames }}{{ $names = append $names . }}{{ end -}}
{{- $names | uniq | toJson -}}
{{- end -}}

{{- define "todod.daprScopes" -}}
{{- if .Values.dapr.scopes -}}{{ toYaml .Values.dapr.scopes }}{{- else -}}- {{ .Values.dapr.appId | quote }}{{- end -}}
{{- end -}}
