{{/*
Pieces shared by every pod of the chart: the "restricted" Pod Security Standard, the
environment contract with the service code, and the volumes.
*/}}

{{/* Pod-level half of the restricted profile. The IDs are values; the rest is fixed. */}}
{{- define "taxi-serve.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
fsGroup: {{ .Values.podSecurity.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container-level half: repeated on each container so that no container relies on defaults. */}}
{{- define "taxi-serve.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Placement shared by every pod. */}}
{{- define "taxi-serve.placement" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Environment every taxi-serve process gets: ports, BENTOML_HOME and extra env from the
ConfigMap, REDIS_URL from the Secret. Call with (dict "root" $ "modelTag" ... "track" ...);
modelTag/track are omitted for processes that do not serve a track.
*/}}
{{- define "taxi-serve.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "taxi-serve.configName" .root }}
env:
  - name: REDIS_URL
    valueFrom:
      secretKeyRef:
        name: {{ include "taxi-serve.redisSecretName" .root }}
        key: {{ .root.Values.redis.secretKey }}
{{- if .modelTag }}
  - name: TAXI_MODEL_TAG
    value: {{ .modelTag | quote }}
{{- end }}
{{- if .track }}
  - name: TAXI_TRACK
    value: {{ .track | quote }}
{{- end }}
{{- if .drainFile }}
  - name: TAXI_DRAIN_FILE
    value: {{ .drainFile | quote }}
{{- end }}
{{- end }}

{{/* Mounts: a writable /tmp (the root filesystem is read-only) and the model store. */}}
{{- define "taxi-serve.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: model-store
  mountPath: {{ .root.Values.modelStore.mountPath }}
  readOnly: {{ .readOnly }}
{{- end }}

{{- define "taxi-serve.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
- name: model-store
{{- if .Values.modelStore.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "taxi-serve.modelStoreClaim" . }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- end }}

{{/*
Scratch space of the jobs that run the pipeline (bootstrap, CronJobs): the root filesystem is
read-only, so the run's datasets, feature tables and Feast registry go to the `work` volume
(scratchVolume takes (dict "size" "2Gi")).
*/}}
{{- define "taxi-serve.scratchMounts" -}}
- name: work
  mountPath: /opt/taxi/app/artifacts
  subPath: artifacts
- name: work
  mountPath: /opt/taxi/app/feature_repo/data
  subPath: feature-data
{{- end }}

{{- define "taxi-serve.scratchVolume" -}}
- name: work
  emptyDir:
    sizeLimit: {{ .size }}
{{- end }}

{{/*
Rolls pods when configuration they read at start-up changes: the ConfigMap and, when the
chart owns it, the Redis URL Secret.
*/}}
{{- define "taxi-serve.configChecksum" -}}
{{- $cm := include (print .Template.BasePath "/configmap.yaml") . }}
{{- $secret := include (print .Template.BasePath "/secret.yaml") . }}
{{- print $cm $secret | sha256sum }}
{{- end }}
