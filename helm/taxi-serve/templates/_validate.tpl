{{/*
Cross-field rules that values.schema.json cannot express. Rendered from configmap.yaml, which
every install renders, so `helm install/upgrade/template` stop with a clear message.
*/}}
{{- define "taxi-serve.validate" -}}
{{- $v := .Values }}
{{- if and $v.redis.dev.enabled $v.redis.existingSecret }}
{{- fail "redis.dev.enabled and redis.existingSecret exclude each other: the dev Redis writes its own URL Secret" }}
{{- end }}
{{- if and (eq $v.rollout.strategy "canary") $v.autoscaling.enabled (eq (include "taxi-serve.canarySplit" .) "replicas") }}
{{- fail "autoscaling.enabled with a replica-ratio canary would let the HPA change the traffic split: enable ingress or gateway, or disable autoscaling" }}
{{- end }}
{{- if and (gt (int $v.preStopDelaySeconds) 0) (ge (int $v.preStopDelaySeconds) (int $v.terminationGracePeriodSeconds)) }}
{{- fail "preStopDelaySeconds must be below terminationGracePeriodSeconds: the pod would be killed before it drains" }}
{{- end }}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- end }}
