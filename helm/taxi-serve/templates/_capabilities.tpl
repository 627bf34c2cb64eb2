{{/*
apiVersions chosen from .Capabilities, so that one chart installs on Kubernetes 1.20 (the
oldest tested, live) and on current releases, where the beta APIs are gone.

On a cluster Helm learns "group/version/Kind" from discovery. `helm template` knows only
group/versions, so an offline render takes the old branch unless given e.g.
--api-versions batch/v1/CronJob (the chart tests render both ways).
*/}}

{{/* CronJob: batch/v1 from 1.21, batch/v1beta1 before (removed in 1.25). */}}
{{- define "taxi-serve.cronJobApiVersion" -}}
{{- if .Capabilities.APIVersions.Has "batch/v1/CronJob" }}batch/v1{{ else }}batch/v1beta1{{ end }}
{{- end }}

{{/* PodDisruptionBudget: policy/v1 from 1.21, policy/v1beta1 before (removed in 1.25). */}}
{{- define "taxi-serve.pdbApiVersion" -}}
{{- if .Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget" }}policy/v1{{ else }}policy/v1beta1{{ end }}
{{- end }}

{{/* HPA: autoscaling/v2 from 1.23, autoscaling/v2beta2 before (removed in 1.26). */}}
{{- define "taxi-serve.hpaApiVersion" -}}
{{- if .Capabilities.APIVersions.Has "autoscaling/v2/HorizontalPodAutoscaler" }}autoscaling/v2{{ else }}autoscaling/v2beta2{{ end }}
{{- end }}

{{/* HTTPRoute: gateway.networking.k8s.io/v1 where the CRD serves it, v1beta1 otherwise. */}}
{{- define "taxi-serve.httpRouteApiVersion" -}}
{{- if .Capabilities.APIVersions.Has "gateway.networking.k8s.io/v1/HTTPRoute" }}gateway.networking.k8s.io/v1{{ else if .Capabilities.APIVersions.Has "gateway.networking.k8s.io/v1beta1/HTTPRoute" }}gateway.networking.k8s.io/v1beta1{{ else }}gateway.networking.k8s.io/v1{{ end }}
{{- end }}

{{/* gRPC probes: beta (on by default) in 1.24, GA in 1.27. */}}
{{- define "taxi-serve.grpcProbeSupported" -}}
{{- if semverCompare ">=1.24-0" .Capabilities.KubeVersion.Version }}true{{ end }}
{{- end }}
