{{/*
What the retrain job may touch, derived from what the chart actually renders: every template
below is rendered with the current values and each object's name is collected per API group and
resource. The Role then allows get/update/patch/delete on exactly those names, so a new template
can never be forgotten (a kind missing from the map below stops the render).
Output: YAML map "<group>/<resource>" -> [names].
*/}}
{{- define "taxi-serve.releaseTemplates" -}}
configmap.yaml secret.yaml serviceaccount.yaml pvc.yaml deployment.yaml services.yaml hpa.yaml
pdb.yaml networkpolicy.yaml redis-dev.yaml drift-monitor.yaml cronjob-materialize.yaml
cronjob-retrain.yaml ingress.yaml httproute.yaml servicemonitor.yaml prometheusrule.yaml
dashboards.yaml bootstrap-job.yaml
{{- end }}

{{- define "taxi-serve.kindResources" -}}
ConfigMap: configmaps
Secret: secrets
ServiceAccount: serviceaccounts
PersistentVolumeClaim: persistentvolumeclaims
Service: services
Deployment: deployments
HorizontalPodAutoscaler: horizontalpodautoscalers
PodDisruptionBudget: poddisruptionbudgets
NetworkPolicy: networkpolicies
CronJob: cronjobs
Job: jobs
Ingress: ingresses
HTTPRoute: httproutes
ServiceMonitor: servicemonitors
PrometheusRule: prometheusrules
Role: roles
RoleBinding: rolebindings
{{- end }}

{{- define "taxi-serve.releaseObjects" -}}
{{- $root := . }}
{{- $resources := include "taxi-serve.kindResources" . | fromYaml }}
{{- $objects := dict }}
{{- $deployments := list }}
{{- range $file := include "taxi-serve.releaseTemplates" . | splitList "\n" | join " " | splitList " " | compact }}
{{- $out := include (print $root.Template.BasePath "/" $file) $root }}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" $out -1 }}
{{- $obj := fromYaml $doc }}
{{- if $obj.kind }}
{{- $resource := required (printf "_rbac.tpl: add kind %s to taxi-serve.kindResources" $obj.kind) (get $resources $obj.kind) }}
{{- $group := ternary (first (splitList "/" $obj.apiVersion)) "" (contains "/" $obj.apiVersion) }}
{{- $key := printf "%s/%s" $group $resource }}
{{- $_ := set $objects $key (append (default (list) (get $objects $key)) $obj.metadata.name) }}
{{- if eq $obj.kind "Deployment" }}{{ $deployments = append $deployments $obj.metadata.name }}{{ end }}
{{- end }}
{{- end }}
{{- end }}
{{- /*
An HPA follows the active color when the idle one is scaled down, so an upgrade that flips
colors creates one HPA and deletes the other: allow the HPA names of every serving Deployment.
*/}}
{{- if hasKey $objects "autoscaling/horizontalpodautoscalers" }}
{{- $_ := set $objects "autoscaling/horizontalpodautoscalers" (concat (get $objects "autoscaling/horizontalpodautoscalers") $deployments) }}
{{- end }}
{{- range $key, $names := $objects }}
{{- $_ := set $objects $key ($names | uniq | sortAlpha) }}
{{- end }}
{{- toYaml $objects }}
{{- end }}
