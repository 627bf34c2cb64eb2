{{/*
Names and labels. Every object name and label set in the chart comes from here, so that the
retrain Role, the Services and the tests agree with what the templates create.
*/}}

{{- define "taxi-serve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name prefix; short enough to leave room for suffixes like "-drift-monitor". */}}
{{- define "taxi-serve.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "taxi-serve.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: the stable subset. Nothing here may change between upgrades. */}}
{{- define "taxi-serve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "taxi-serve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Common labels on every object: the selector subset plus descriptive labels. */}}
{{- define "taxi-serve.labels" -}}
{{ include "taxi-serve.selectorLabels" . }}
{{ include "taxi-serve.descriptiveLabels" (dict "root" . "version" .Chart.AppVersion) }}
{{- end }}

{{/* Labels that describe but never select; pods carry the version they actually run. */}}
{{- define "taxi-serve.descriptiveLabels" -}}
helm.sh/chart: {{ include "taxi-serve.chart" .root }}
app.kubernetes.io/version: {{ .version | toString | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: taxi-serve
{{- end }}

{{/*
Labels and selector of one component. Call with (dict "root" $ "component" "server").
*/}}
{{- define "taxi-serve.componentSelector" -}}
{{ include "taxi-serve.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "taxi-serve.componentLabels" -}}
{{ include "taxi-serve.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Serving pods of one track (main, stable, canary, blue, green). Call with
(dict "root" $ "track" "stable"). The track label is part of the Deployment selector, which
is immutable, so a track's Deployment always selects exactly its own pods.
*/}}
{{- define "taxi-serve.trackSelector" -}}
{{ include "taxi-serve.componentSelector" (dict "root" .root "component" "server") }}
taxi-serve.io/track: {{ .track }}
{{- end }}

{{- define "taxi-serve.trackLabels" -}}
{{ include "taxi-serve.componentLabels" (dict "root" .root "component" "server") }}
taxi-serve.io/track: {{ .track }}
{{- end }}

{{/*
Pod template labels: a selector (componentSelector or trackSelector output) plus descriptive
labels with the image version the pod runs. Call with (dict "root" $ "selector" ... "version" ...).
*/}}
{{- define "taxi-serve.podLabels" -}}
{{ .selector }}
{{ include "taxi-serve.descriptiveLabels" (dict "root" .root "version" .version) }}
{{- end }}

{{/* ---- object names ---- */}}

{{/* Serving Deployment of a track: the full name for `main`, "<fullname>-<track>" otherwise. */}}
{{- define "taxi-serve.trackName" -}}
{{- if eq .track "main" }}{{ include "taxi-serve.fullname" .root }}{{ else }}{{ printf "%s-%s" (include "taxi-serve.fullname" .root) .track }}{{ end }}
{{- end }}

{{/* The Service clients call: the active color for blue-green, the full name otherwise. */}}
{{- define "taxi-serve.entryServiceName" -}}
{{- if eq .Values.rollout.strategy "blueGreen" }}{{ include "taxi-serve.fullname" . }}-active{{ else }}{{ include "taxi-serve.fullname" . }}{{ end }}
{{- end }}

{{- define "taxi-serve.configName" -}}{{ include "taxi-serve.fullname" . }}-config{{- end }}
{{- define "taxi-serve.metricsServiceName" -}}{{ include "taxi-serve.fullname" . }}-metrics{{- end }}
{{- define "taxi-serve.driftName" -}}{{ include "taxi-serve.fullname" . }}-drift-monitor{{- end }}
{{- define "taxi-serve.redisName" -}}{{ include "taxi-serve.fullname" . }}-redis{{- end }}
{{- define "taxi-serve.materializeName" -}}{{ include "taxi-serve.fullname" . }}-materialize{{- end }}
{{- /*
The bootstrap Job's name carries a hash of what its pod runs: a Job's pod template is immutable,
so a new job image or new bootstrap values make a new Job (helm deletes the old one), while
upgrades that change neither (every model rollout) leave it alone.
*/}}
{{- define "taxi-serve.bootstrapName" -}}
{{- $spec := toJson (dict "image" .Values.jobImage "bootstrap" .Values.bootstrap) }}
{{- printf "%s-bootstrap-%s" (include "taxi-serve.fullname" .) (sha256sum $spec | trunc 8) }}
{{- end }}
{{- define "taxi-serve.retrainName" -}}{{ include "taxi-serve.fullname" . }}-retrain{{- end }}
{{- define "taxi-serve.dashboardsName" -}}{{ include "taxi-serve.fullname" . }}-dashboards{{- end }}

{{- define "taxi-serve.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}{{ default (include "taxi-serve.fullname" .) .Values.serviceAccount.name }}{{ else }}{{ required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}{{ end }}
{{- end }}

{{- define "taxi-serve.redisSecretName" -}}
{{- if and .Values.redis.existingSecret (not .Values.redis.dev.enabled) }}{{ .Values.redis.existingSecret }}{{ else }}{{ include "taxi-serve.fullname" . }}-redis-url{{ end }}
{{- end }}

{{- define "taxi-serve.redisUrl" -}}
{{- if .Values.redis.dev.enabled }}{{ printf "redis://%s:6379/0" (include "taxi-serve.redisName" .) }}{{ else }}{{ .Values.redis.url }}{{ end }}
{{- end }}

{{- define "taxi-serve.modelStoreClaim" -}}
{{- default (printf "%s-model-store" (include "taxi-serve.fullname" .)) .Values.modelStore.persistence.existingClaim }}
{{- end }}

{{/* Image reference "repository:tag". */}}
{{- define "taxi-serve.image" -}}
{{- printf "%s:%s" .repository (toString .tag) }}
{{- end }}
