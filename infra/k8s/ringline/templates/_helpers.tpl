{{/* Names -------------------------------------------------------------------------------- */}}

{{- define "ringline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<release>-ringline", or just the release name when it already contains the chart name. */}}
{{- define "ringline.fullname" -}}
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

{{/* Name of one component: (dict "root" $ "component" "stt") */}}
{{- define "ringline.componentName" -}}
{{- printf "%s-%s" (include "ringline.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ringline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels -------------------------------------------------------------------------------- */}}

{{- define "ringline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ringline.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ringline.labels" -}}
helm.sh/chart: {{ include "ringline.chart" .root }}
{{ include "ringline.selectorLabels" . }}
app.kubernetes.io/part-of: ringline
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- if .root.Chart.AppVersion }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{- end }}
{{- end -}}

{{/* Pods of the five Ringline services carry this label (NetworkPolicy peers use it). */}}
{{- define "ringline.serviceRoleLabel" -}}
ringline.dev/role: service
{{- end -}}

{{/* Images ------------------------------------------------------------------------------- */}}

{{- define "ringline.image" -}}
{{- $img := .Values.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{- define "ringline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ringline.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Wiring -------------------------------------------------------------------------------- */}}

{{/* True (non-empty) when the chart runs its own NATS. */}}
{{- define "ringline.nats.internal" -}}
{{- if not (or .Values.nats.external.url .Values.nats.external.urlSecret.name) -}}true{{- end -}}
{{- end -}}

{{- define "ringline.nats.fullname" -}}
{{- include "ringline.componentName" (dict "root" . "component" "nats") -}}
{{- end -}}

{{- define "ringline.nats.headless" -}}
{{- printf "%s-headless" (include "ringline.nats.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* NATS_URL as a plain value; empty when it comes from a Secret. */}}
{{- define "ringline.nats.url" -}}
{{- if .Values.nats.external.url -}}
{{- .Values.nats.external.url -}}
{{- else if not .Values.nats.external.urlSecret.name -}}
{{- printf "nats://%s:%d" (include "ringline.nats.fullname" .) (int .Values.nats.ports.client) -}}
{{- end -}}
{{- end -}}

{{- define "ringline.jaeger.fullname" -}}
{{- include "ringline.componentName" (dict "root" . "component" "jaeger") -}}
{{- end -}}

{{/* OTEL_EXPORTER_OTLP_ENDPOINT: the chart's Jaeger when enabled, else otel.endpoint (may be empty). */}}
{{- define "ringline.otel.endpoint" -}}
{{- if .Values.jaeger.enabled -}}
{{- printf "http://%s:%d" (include "ringline.jaeger.fullname" .) (int .Values.jaeger.ports.otlpHttp) -}}
{{- else -}}
{{- .Values.otel.endpoint -}}
{{- end -}}
{{- end -}}

{{/* RINGLINE_TELEPHONY_PUBLIC_URL: explicit, else from the first ingress host. */}}
{{- define "ringline.telephony.publicUrl" -}}
{{- $tel := .Values.services.telephony -}}
{{- if $tel.publicUrl -}}
{{- $tel.publicUrl | trimSuffix "/" -}}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts -}}
{{- $host := (first .Values.ingress.hosts).host -}}
{{- printf "%s://%s" (ternary "https" "http" (gt (len .Values.ingress.tls) 0)) $host -}}
{{- end -}}
{{- end -}}

{{- define "ringline.secretName" -}}
{{- default (include "ringline.componentName" (dict "root" . "component" "secrets")) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* True when some Secret (chart-created or existing) is there to reference. */}}
{{- define "ringline.secrets.available" -}}
{{- if or .Values.secrets.existingSecret .Values.secrets.create -}}true{{- end -}}
{{- end -}}

{{/* Host and port of a URL such as nats://user:pw@host:4222 -> "4222" (default given). */}}
{{- define "ringline.urlPort" -}}
{{- $u := urlParse .url -}}
{{- $hostport := $u.host -}}
{{- if contains "@" $hostport -}}{{- $hostport = last (splitList "@" $hostport) -}}{{- end -}}
{{- $parts := splitList ":" $hostport -}}
{{- if gt (len $parts) 1 -}}{{- last $parts -}}{{- else -}}{{- .default -}}{{- end -}}
{{- end -}}

{{/* Deep merge of two maps, `over` winning, as YAML. Unlike sprig's mergeOverwrite it keeps
     an explicit false / 0 / "" from `over` (e.g. podDisruptionBudget.enabled: false). */}}
{{- define "ringline.merge" -}}
{{- $out := deepCopy .base -}}
{{- range $k, $v := .over -}}
{{- $b := get $out $k -}}
{{- if and (kindIs "map" $v) (kindIs "map" $b) -}}
{{- $_ := set $out $k (include "ringline.merge" (dict "base" $b "over" $v) | fromYaml) -}}
{{- else -}}
{{- $_ := set $out $k $v -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* Settings of one service: serviceDefaults overlaid by services.<name>. */}}
{{- define "ringline.serviceConfig" -}}
{{- include "ringline.merge" (dict "base" .root.Values.serviceDefaults "over" (get .root.Values.services .name)) -}}
{{- end -}}

{{/* Grace period of a service: explicit (checked) or preStop + drain + 10 s. */}}
{{- define "ringline.gracePeriod" -}}
{{- $c := .config -}}
{{- $floor := add (int $c.preStopSleepSeconds) (ceil $c.drainTimeoutSeconds | int) -}}
{{- if $c.terminationGracePeriodSeconds -}}
{{- if le (int $c.terminationGracePeriodSeconds) $floor -}}
{{- fail (printf "services.%s: terminationGracePeriodSeconds (%d) must be longer than preStopSleepSeconds + drainTimeoutSeconds (%d), or the pod is killed before it has drained" .name (int $c.terminationGracePeriodSeconds) $floor) -}}
{{- end -}}
{{- int $c.terminationGracePeriodSeconds -}}
{{- else -}}
{{- add $floor 10 -}}
{{- end -}}
{{- end -}}

{{/* NATS users (issue 11) ------------------------------------------------------------------- */}}

{{/* The per-user grants, generated from contracts/runtime/permissions.py. */}}
{{- define "ringline.nats.permissions" -}}
{{- .Files.Get "files/nats-permissions.json" -}}
{{- end -}}

{{/* Secret of the NATS users' passwords (one key per user); empty when services log in otherwise. */}}
{{- define "ringline.nats.usersSecret" -}}
{{- $auth := .Values.nats.auth -}}
{{- if $auth.existingSecret -}}
{{- $auth.existingSecret -}}
{{- else if and $auth.enabled (include "ringline.nats.internal" .) -}}
{{- printf "%s-users" (include "ringline.nats.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* True when the chart's own NATS has one user per service. */}}
{{- define "ringline.nats.auth" -}}
{{- if and .Values.nats.auth.enabled (include "ringline.nats.internal" .) -}}true{{- end -}}
{{- end -}}
