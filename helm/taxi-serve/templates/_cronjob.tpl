{{/*
A CronJob running the job image with the taxi-serve environment and a writable model
store. Call with (dict "root" $ "name" ... "component" ... "job" <values block>
"command" (list ...) "serviceAccount" ... "mountToken" bool "env" (list of EnvVar)).
Runs never overlap (concurrencyPolicy Forbid): two materializations or two rollouts at once
would race on Redis or on the Helm release.
*/}}
{{- define "taxi-serve.cronJob" -}}
{{- $root := .root }}
{{- $job := .job }}
{{- $sel := dict "root" $root "component" .component }}
apiVersion: {{ include "taxi-serve.cronJobApiVersion" $root }}
kind: CronJob
metadata:
  name: {{ .name }}
  labels:
    {{- include "taxi-serve.componentLabels" $sel | nindent 4 }}
spec:
  schedule: {{ $job.schedule | quote }}
  suspend: {{ $job.suspend }}
  concurrencyPolicy: Forbid
  # A run missed by more than this (controller down, suspended) is skipped, not replayed.
  startingDeadlineSeconds: 300
  successfulJobsHistoryLimit: {{ $job.successfulJobsHistoryLimit }}
  failedJobsHistoryLimit: {{ $job.failedJobsHistoryLimit }}
  jobTemplate:
    metadata:
      labels:
        {{- include "taxi-serve.componentLabels" $sel | nindent 8 }}
    spec:
      activeDeadlineSeconds: {{ $job.activeDeadlineSeconds }}
      backoffLimit: {{ $job.backoffLimit }}
      template:
        metadata:
          labels:
            {{- include "taxi-serve.componentLabels" $sel | nindent 12 }}
          annotations:
            checksum/config: {{ include "taxi-serve.configChecksum" $root }}
        spec:
          restartPolicy: Never
          serviceAccountName: {{ .serviceAccount }}
          automountServiceAccountToken: {{ .mountToken }}
          enableServiceLinks: false
          securityContext:
            {{- include "taxi-serve.podSecurityContext" $root | nindent 12 }}
          {{- with include "taxi-serve.placement" $root }}
          {{- . | nindent 10 }}
          {{- end }}
          containers:
            - name: {{ .component }}
              image: {{ include "taxi-serve.image" $root.Values.jobImage }}
              imagePullPolicy: {{ $root.Values.jobImage.pullPolicy }}
              command: {{ toJson .command }}
              {{- include "taxi-serve.env" (dict "root" $root) | nindent 14 }}
              {{- with .env }}
              {{- toYaml . | nindent 16 }}
              {{- end }}
              resources:
                {{- toYaml $job.resources | nindent 16 }}
              securityContext:
                {{- include "taxi-serve.containerSecurityContext" $root | nindent 16 }}
              volumeMounts:
                {{- include "taxi-serve.volumeMounts" (dict "root" $root "readOnly" false) | nindent 16 }}
                {{- include "taxi-serve.scratchMounts" $root | nindent 16 }}
          volumes:
            {{- include "taxi-serve.volumes" $root | nindent 12 }}
            {{- include "taxi-serve.scratchVolume" (dict "size" "4Gi") | nindent 12 }}
{{- end }}
