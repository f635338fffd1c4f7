{{/*
The other resources of a service chart. Each takes the chart's root context.
*/}}

{{/* `<fullname>` selects the live colour; `<fullname>-preview` the idle one (under Argo Rollouts: Argo's selectors). */}}
{{- define "platform-lib.services" -}}
{{- $argo := include "platform-lib.argoRollouts" . -}}
{{- $blueGreen := include "platform-lib.blueGreen" . -}}
{{- $services := list (dict "suffix" "" "colour" (include "platform-lib.activeColour" .) "type" .Values.service.type) -}}
{{- if or $argo $blueGreen -}}
{{- $services = append $services (dict "suffix" "-preview" "colour" (include "platform-lib.idleColour" .) "type" "ClusterIP") -}}
{{- end -}}
{{- range $services }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "platform-lib.fullname" $ }}{{ .suffix }}
  labels:
    {{- include "platform-lib.labels" $ | nindent 4 }}
  {{- $annotations := deepCopy (default dict $.Values.service.annotations) -}}
  {{- if eq .type "LoadBalancer" }}{{ $annotations = merge $annotations (default dict $.Values.global.loadBalancerAnnotations) }}{{ end }}
  {{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .type }}
  selector:
    {{- include "platform-lib.selectorLabels" $ | nindent 4 }}
    {{- if not $argo }}
    trading.platform/colour: {{ .colour }}
    {{- end }}
  ports:
    - name: {{ include "platform-lib.mainPortName" $ }}
      port: {{ include "platform-lib.mainPort" $ }}
      targetPort: {{ include "platform-lib.mainPortName" $ }}
      protocol: TCP
      {{- if $.Values.grpc }}
      appProtocol: grpc
      {{- end }}
    {{- if include "platform-lib.extraHttp" $ }}
    - name: http
      port: {{ $.Values.http.port }}
      targetPort: http
      protocol: TCP
    {{- end }}
    {{- if $.Values.metrics.enabled }}
    - name: metrics
      port: {{ $.Values.metrics.port }}
      targetPort: metrics
      protocol: TCP
    {{- end }}
{{- end }}
{{- end -}}

{{- define "platform-lib.configmap" -}}
{{- $env := include "platform-lib.env" . -}}
{{- if $env -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "platform-lib.fullname" . }}
  labels:
    {{- include "platform-lib.labels" . | nindent 4 }}
data:
  {{- $env | trim | nindent 2 }}
{{- end -}}
{{- end -}}

{{- define "platform-lib.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "platform-lib.serviceAccountName" . }}
  labels:
    {{- include "platform-lib.labels" . | nindent 4 }}
  {{- with .Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end -}}
{{- end -}}

{{/* Protects the live colour; the idle colour is a shadow and may be disrupted. */}}
{{- define "platform-lib.pdb" -}}
{{- if (default dict .Values.podDisruptionBudget).enabled -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "platform-lib.fullname" . }}
  labels:
    {{- include "platform-lib.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .Values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "platform-lib.selectorLabels" . | nindent 6 }}
      {{- if include "platform-lib.argoRollouts" . }}
      trading.platform/role: live
      {{- else }}
      trading.platform/colour: {{ include "platform-lib.activeColour" . }}
      {{- end }}
{{- end -}}
{{- end -}}

{{/* Scales the live colour's Deployment (or the Rollout). */}}
{{- define "platform-lib.hpa" -}}
{{- if (default dict .Values.autoscaling).enabled -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "platform-lib.fullname" . }}
  labels:
    {{- include "platform-lib.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    {{- if include "platform-lib.argoRollouts" . }}
    apiVersion: argoproj.io/v1alpha1
    kind: Rollout
    name: {{ include "platform-lib.fullname" . }}
    {{- else }}
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "platform-lib.fullname" . }}{{ if include "platform-lib.blueGreen" . }}-{{ include "platform-lib.activeColour" . }}{{ end }}
    {{- end }}
  minReplicas: {{ .Values.autoscaling.minReplicas }}
  maxReplicas: {{ .Values.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .Values.autoscaling.targetCPUUtilizationPercentage }}
{{- end -}}
{{- end -}}

{{/*
Ingress is denied except: the main port from the pods named in networkPolicy.allowFrom and from namespaces labelled
global.networkPolicy.operatorNamespaceLabels (tradectl, operators); the metrics port from the Prometheus pods (global.networkPolicy.prometheusPodLabels) in
Prometheus's namespace (global.networkPolicy.prometheusNamespaceLabels); a gRPC service's HTTP port (http.port, the
gateway) from namespaces labelled networkPolicy.httpFromNamespaceLabels (the ingress controller's) and the operators';
nothing else.
Egress is denied except: DNS; Kafka, Redis and Vault ports (networkPolicy.platformEgress); the pods and ports of
networkPolicy.egressTo; HTTPS to networkPolicy.brokerEgress.cidr (the broker); networkPolicy.extraEgress.
*/}}
{{- define "platform-lib.networkPolicy" -}}
{{- $np := .Values.networkPolicy -}}
{{- $global := default dict .Values.global.networkPolicy -}}
{{- if and $np.enabled (ne (toString $global.enabled) "false") -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "platform-lib.fullname" . }}
  labels:
    {{- include "platform-lib.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "platform-lib.selectorLabels" . | nindent 6 }}
  policyTypes: ["Ingress", "Egress"]
  ingress:
    - from:
        {{- range $np.allowFrom }}
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {{ . }}
        {{- end }}
        - namespaceSelector:
            matchLabels:
              {{- toYaml (default (dict "trading.platform/operators" "true") $global.operatorNamespaceLabels) | nindent 14 }}
      ports:
        - port: {{ include "platform-lib.mainPortName" . }}
          protocol: TCP
    {{- if include "platform-lib.extraHttp" . }}
    {{- /* a gRPC service's HTTP port (the gateway): from the ingress controller's namespace and the operators' */}}
    - from:
        {{- with $np.httpFromNamespaceLabels }}
        - namespaceSelector:
            matchLabels:
              {{- toYaml . | nindent 14 }}
        {{- end }}
        - namespaceSelector:
            matchLabels:
              {{- toYaml (default (dict "trading.platform/operators" "true") $global.operatorNamespaceLabels) | nindent 14 }}
      ports:
        - port: http
          protocol: TCP
    {{- end }}
    {{- if .Values.metrics.enabled }}
    {{- /* one peer with both selectors: pods with the scraper's labels in the scraper's namespace only */}}
    - from:
        - namespaceSelector:
            matchLabels:
              {{- toYaml (default (dict "kubernetes.io/metadata.name" "monitoring") $global.prometheusNamespaceLabels) | nindent 14 }}
          podSelector:
            matchLabels:
              {{- toYaml (default (dict "app.kubernetes.io/name" "prometheus") $global.prometheusPodLabels) | nindent 14 }}
      ports:
        - port: metrics
          protocol: TCP
    {{- end }}
    {{- with $np.extraIngress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  egress:
    - ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
    {{- if $np.platformEgress }}
    - ports:
        {{- range list ($global.kafkaPort | default 9092) ($global.redisPort | default 6379) ($global.vaultPort | default 8200) }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
    {{- end }}
    {{- range $np.egressTo }}
    - to:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {{ .name }}
      ports:
        - port: {{ .port }}
          protocol: TCP
    {{- end }}
    {{- if and $np.brokerEgress $np.brokerEgress.enabled }}
    - to:
        - ipBlock:
            cidr: {{ $np.brokerEgress.cidr }}
      ports:
        - port: 443
          protocol: TCP
    {{- end }}
    {{- with $np.extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}
{{- end -}}

{{/* Scrapes both colours: it selects `<fullname>` and `<fullname>-preview`. Needs the Prometheus Operator CRDs. */}}
{{- define "platform-lib.serviceMonitor" -}}
{{- if and (default dict .Values.serviceMonitor).enabled .Values.metrics.enabled -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "platform-lib.fullname" . }}
  labels:
    {{- include "platform-lib.labels" . | nindent 4 }}
    {{- with .Values.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "platform-lib.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: metrics
      path: /metrics
      interval: {{ .Values.serviceMonitor.interval }}
{{- end -}}
{{- end -}}

{{/* One claim per colour: each colour keeps its own state (the audit ledger of the shadow colour is its own). */}}
{{- define "platform-lib.pvcs" -}}
{{- if (default dict .Values.persistence).enabled -}}
{{- $suffixes := list "" -}}
{{- if include "platform-lib.blueGreen" . }}{{ $suffixes = list "-blue" "-green" }}{{ end -}}
{{- range $suffixes }}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ include "platform-lib.fullname" $ }}{{ . }}-data
  labels:
    {{- include "platform-lib.labels" $ | nindent 4 }}
  annotations:
    # An uninstall must not delete a record of the system.
    helm.sh/resource-policy: keep
spec:
  accessModes: ["ReadWriteOnce"]
  {{- with ($.Values.persistence.storageClass | default $.Values.global.storageClass) }}
  storageClassName: {{ . }}
  {{- end }}
  resources:
    requests:
      storage: {{ $.Values.persistence.size }}
{{- end }}
{{- end -}}
{{- end -}}
