{{/*
The serving tracks of the chosen rollout strategy, as YAML ("tracks: [...]"); read it with
  {{- range (include "taxi-serve.tracks" . | fromYaml).tracks }}
Each track: name, modelTag, imageTag, replicas, autoscale (the HPA owns its replica count),
role (what the track is for: main, stable, canary, active, idle).
*/}}
{{- define "taxi-serve.tracks" -}}
{{- $v := .Values }}
{{- $r := $v.rollout }}
{{- $tracks := list }}
{{- if eq $r.strategy "standard" }}
{{- $tracks = append $tracks (dict "name" "main" "role" "main" "modelTag" $v.model.tag "imageTag" $v.image.tag "replicas" $v.replicaCount "autoscale" $v.autoscaling.enabled) }}
{{- else if eq $r.strategy "canary" }}
{{- $c := $r.canary }}
{{- $stableReplicas := $v.replicaCount }}
{{- $canaryReplicas := $c.canary.replicas }}
{{- if eq (include "taxi-serve.canarySplit" .) "replicas" }}
{{- /* No traffic router: the weight becomes a share of replicaCount pods. */}}
{{- $split := include "taxi-serve.replicaSplit" . | fromYaml }}
{{- $stableReplicas = $split.stable }}
{{- $canaryReplicas = $split.canary }}
{{- end }}
{{- $tracks = append $tracks (dict "name" "stable" "role" "stable" "modelTag" $c.stable.modelTag "imageTag" (default $v.image.tag $c.stable.imageTag) "replicas" $stableReplicas "autoscale" $v.autoscaling.enabled) }}
{{- $tracks = append $tracks (dict "name" "canary" "role" "canary" "modelTag" $c.canary.modelTag "imageTag" (default $v.image.tag $c.canary.imageTag) "replicas" $canaryReplicas "autoscale" false) }}
{{- else if eq $r.strategy "blueGreen" }}
{{- $bg := $r.blueGreen }}
{{- range $color := list "blue" "green" }}
{{- $spec := get $bg $color }}
{{- $active := eq $color $bg.activeColor }}
{{- $idleScaled := and (not $active) $bg.scaleDownIdle }}
{{- $replicas := ternary 0 $v.replicaCount $idleScaled }}
{{- $tracks = append $tracks (dict "name" $color "role" (ternary "active" "idle" $active) "modelTag" $spec.modelTag "imageTag" (default $v.image.tag $spec.imageTag) "replicas" $replicas "autoscale" (and $v.autoscaling.enabled (not $idleScaled))) }}
{{- end }}
{{- end }}
{{- dict "tracks" $tracks | toYaml }}
{{- end }}

{{/* How a canary's traffic is split: ingress, gateway or replicas. */}}
{{- define "taxi-serve.canarySplit" -}}
{{- if .Values.ingress.enabled }}ingress{{ else if .Values.gateway.enabled }}gateway{{ else }}replicas{{ end }}
{{- end }}

{{/*
Replica-ratio split of replicaCount pods: canary = round(total * weight / 100), at least one
pod for any weight above 0 and at least one stable pod for any weight below 100.
*/}}
{{- define "taxi-serve.replicaSplit" -}}
{{- $total := int .Values.replicaCount }}
{{- $w := int .Values.rollout.canary.weight }}
{{- $canary := div (add (mul $total $w) 50) 100 }}
{{- if and (gt $w 0) (lt $canary 1) }}{{ $canary = 1 }}{{ end }}
{{- if and (lt $w 100) (ge $canary $total) }}{{ $canary = sub $total 1 }}{{ end }}
{{- if and (gt $w 0) (lt $w 100) (lt $total 2) }}
{{- fail "rollout.strategy=canary without ingress or gateway splits traffic by pod count: replicaCount must be at least 2" }}
{{- end }}
stable: {{ sub $total $canary }}
canary: {{ $canary }}
{{- end }}
