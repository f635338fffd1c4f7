{{/*
Workloads. Call with a dict:
  root    the chart's root context
  module  the Python module to run (`python -m <module>`)
  args    optional list of arguments
  env     optional list of extra EnvVar objects (e.g. secretKeyRef for the paper exchange)

Blue-green (docs/architecture.md section 9): `<fullname>-blue` and `<fullname>-green`, each with TRADING_DEPLOYMENT__COLOUR and
TRADING_DEPLOYMENT__ROLE (live for blueGreen.activeColour, shadow for the other: shadow consumer groups, shadow.<topic>
outputs, never the broker) and TRADING_DEPLOYMENT__BLUE_GREEN=true: at run time each colour follows the live colour
held in Redis, which `tradectl deploy promote` moves after its checks (the Service selector follows with
`--set blueGreen.activeColour`). Switching activeColour moves the Services' selectors and both roles. With blue-green off
one Deployment `<fullname>` runs live. With argoRollouts.enabled one Rollout replaces both Deployments.
*/}}
{{- define "platform-lib.workloads" -}}
{{- $root := .root -}}
{{- $active := include "platform-lib.activeColour" $root -}}
{{- if include "platform-lib.argoRollouts" $root -}}
{{ include "platform-lib.rollout" . }}
{{- else if include "platform-lib.blueGreen" $root -}}
{{- range $colour := list "blue" "green" }}
---
{{ include "platform-lib.deployment" (merge (dict "colour" $colour "live" (eq $colour $active) "suffix" (printf "-%s" $colour)) $) }}
{{- end -}}
{{- else }}
{{ include "platform-lib.deployment" (merge (dict "colour" $active "live" true "suffix" "") .) }}
{{- end -}}
{{- end -}}

{{- define "platform-lib.deployment" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "platform-lib.fullname" $root }}{{ .suffix }}
  labels:
    {{- include "platform-lib.labels" $root | nindent 4 }}
    trading.platform/colour: {{ .colour }}
    trading.platform/role: {{ ternary "live" "shadow" .live }}
spec:
  {{- if not .live }}
  replicas: {{ $v.blueGreen.idleReplicas }}
  {{- else if not (and $v.autoscaling $v.autoscaling.enabled) }}
  replicas: {{ $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 3
  {{- with $v.strategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "platform-lib.selectorLabels" $root | nindent 6 }}
      trading.platform/colour: {{ .colour }}
  template:
    {{- include "platform-lib.podTemplate" . | nindent 4 }}
{{- end -}}

{{/*
Argo Rollouts keeps one pod template for both colours, so the role comes from the pod label Argo sets
(previewMetadata: shadow, activeMetadata: live) through the downward API. A container reads its environment once:
pods start as shadow and take the live role at their next start after `kubectl argo rollouts promote`.
*/}}
{{- define "platform-lib.rollout" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- if (default dict $v.persistence).enabled }}
{{- fail "argoRollouts.enabled needs one volume per colour; this chart's persistent volume cannot be shared: use blueGreen" }}
{{- end }}
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: {{ include "platform-lib.fullname" $root }}
  labels:
    {{- include "platform-lib.labels" $root | nindent 4 }}
spec:
  {{- if not (and $v.autoscaling $v.autoscaling.enabled) }}
  replicas: {{ $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      {{- include "platform-lib.selectorLabels" $root | nindent 6 }}
  template:
    {{- include "platform-lib.podTemplate" (merge (dict "colour" "" "live" false "argo" true) .) | nindent 4 }}
  strategy:
    blueGreen:
      activeService: {{ include "platform-lib.fullname" $root }}
      previewService: {{ include "platform-lib.fullname" $root }}-preview
      autoPromotionEnabled: false
      {{- if gt (int $v.blueGreen.idleReplicas) 0 }}
      previewReplicaCount: {{ $v.blueGreen.idleReplicas }}
      {{- end }}
      scaleDownDelaySeconds: 30
      activeMetadata:
        labels:
          trading.platform/role: live
      previewMetadata:
        labels:
          trading.platform/role: shadow
{{- end -}}

{{- define "platform-lib.podTemplate" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $env := include "platform-lib.env" $root -}}
metadata:
  labels:
    {{- include "platform-lib.selectorLabels" $root | nindent 4 }}
    app.kubernetes.io/version: {{ include "platform-lib.imageTag" . | quote }}
    app.kubernetes.io/component: {{ $v.component }}
    app.kubernetes.io/part-of: trading-platform
    {{- if .argo }}
    trading.platform/role: shadow
    {{- else }}
    trading.platform/colour: {{ .colour }}
    trading.platform/role: {{ ternary "live" "shadow" .live }}
    {{- end }}
    {{- with merge (dict) (default dict $v.podLabels) (default dict $v.global.podLabels) }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ $env | sha256sum }}
    {{- include "platform-lib.vaultAgent" $root | nindent 4 }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "platform-lib.serviceAccountName" $root }}
  # Vault's Kubernetes auth logs in with the pod's service-account token.
  automountServiceAccountToken: true
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  terminationGracePeriodSeconds: 30
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    runAsGroup: 10001
    fsGroup: 10001
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: {{ $root.Chart.Name }}
      image: {{ include "platform-lib.image" . | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      command: ["python", "-m", {{ .module | quote }}]
      {{- with .args }}
      args:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      ports:
        - name: {{ include "platform-lib.mainPortName" $root }}
          containerPort: {{ include "platform-lib.mainPort" $root }}
          protocol: TCP
        {{- if $v.grpc }}
        - name: health
          containerPort: {{ $v.grpc.healthPort }}
          protocol: TCP
        {{- end }}
        {{- if include "platform-lib.extraHttp" $root }}
        - name: http
          containerPort: {{ $v.http.port }}
          protocol: TCP
        {{- end }}
        {{- if $v.metrics.enabled }}
        - name: metrics
          containerPort: {{ $v.metrics.port }}
          protocol: TCP
        {{- end }}
      {{- if $env }}
      envFrom:
        - configMapRef:
            name: {{ include "platform-lib.fullname" $root }}
      {{- end }}
      env:
        - name: HOME
          value: /tmp
        - name: PYTHONDONTWRITEBYTECODE
          value: "1"
        {{- if $v.grpc }}
        - name: TRADING_DEPLOYMENT__COLOUR
          value: {{ .colour | default (include "platform-lib.activeColour" $root) }}
        - name: TRADING_DEPLOYMENT__ROLE
          {{- if .argo }}
          valueFrom:
            fieldRef:
              fieldPath: metadata.labels['trading.platform/role']
          {{- else }}
          value: {{ ternary "live" "shadow" .live }}
          {{- end }}
        {{- if or (include "platform-lib.blueGreen" $root) .argo }}
        {{- /* the role above is the start-up role; at run time it follows the live colour in Redis, which
               `tradectl deploy promote|rollback` moves (trading_platform.deployment) */}}
        - name: TRADING_DEPLOYMENT__BLUE_GREEN
          value: "true"
        {{- end }}
        {{- if and (not .live) (not .argo) $v.blueGreen.shadowConfig }}
        {{- /* the idle colour talks to the other services' idle colours (their -preview Services) */}}
        {{- range $name, $value := include "platform-lib.configEnv" (dict "root" $root "config" $v.blueGreen.shadowConfig) | fromYaml }}
        - name: {{ $name }}
          value: {{ $value | quote }}
        {{- end }}
        {{- end }}
        {{- end }}
        {{- with .env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- include "platform-lib.probes" $root | nindent 6 }}
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        readOnlyRootFilesystem: true
        allowPrivilegeEscalation: false
        capabilities:
          drop: ["ALL"]
        seccompProfile:
          type: RuntimeDefault
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if (default dict $v.persistence).enabled }}
        - name: data
          mountPath: {{ $v.persistence.mountPath }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 256Mi
    {{- if (default dict $v.persistence).enabled }}
    - name: data
      persistentVolumeClaim:
        claimName: {{ include "platform-lib.fullname" $root }}{{ .suffix }}-data
    {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* gRPC health probes (grpc.health.v1) on grpc.healthPort: the gRPC port itself is mTLS-only and a kubelet probe
     cannot present a client certificate, so the service also serves health alone, in plaintext, there
     (TRADING_GRPC__HEALTH_PORT). An HTTP GET of http.healthPath for a chart without gRPC. */}}
{{- define "platform-lib.probes" -}}
{{- $probe := dict -}}
{{- if .Values.grpc -}}
{{- $probe = dict "grpc" (dict "port" (int .Values.grpc.healthPort)) -}}
{{- else -}}
{{- $probe = dict "httpGet" (dict "path" .Values.http.healthPath "port" "http") -}}
{{- end -}}
startupProbe:
  {{- toYaml $probe | nindent 2 }}
  periodSeconds: 2
  failureThreshold: 60
readinessProbe:
  {{- toYaml $probe | nindent 2 }}
  periodSeconds: 5
  failureThreshold: 3
livenessProbe:
  {{- toYaml $probe | nindent 2 }}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
{{- end -}}

{{/*
Vault Agent injector annotations (vault.agent.enabled): the injector adds an init container and a sidecar that log in
with Vault's Kubernetes auth (the pod's ServiceAccount token, role vault.role) and render each of vault.agent.files
from its Vault path into /vault/secrets/<name>, kept fresh while the pod runs. Certificates and tokens reach a pod
this way (or through the service's own Vault login), never as literal values.
*/}}
{{- define "platform-lib.vaultAgent" -}}
{{- $agent := (default dict (default dict .Values.vault).agent) -}}
{{- if $agent.enabled -}}
vault.hashicorp.com/agent-inject: "true"
vault.hashicorp.com/role: {{ default .Chart.Name .Values.vault.role | quote }}
vault.hashicorp.com/agent-pre-populate: "true"
vault.hashicorp.com/agent-run-as-user: "10001"
vault.hashicorp.com/agent-run-as-group: "10001"
vault.hashicorp.com/secret-volume-path: /vault/secrets
vault.hashicorp.com/agent-requests-cpu: {{ $agent.resources.requests.cpu | quote }}
vault.hashicorp.com/agent-requests-mem: {{ $agent.resources.requests.memory | quote }}
vault.hashicorp.com/agent-limits-cpu: {{ $agent.resources.limits.cpu | quote }}
vault.hashicorp.com/agent-limits-mem: {{ $agent.resources.limits.memory | quote }}
{{- range $file, $spec := $agent.files }}
vault.hashicorp.com/agent-inject-secret-{{ $file }}: {{ required (printf "vault.agent.files.%s.path is required" $file) $spec.path | quote }}
{{- with $spec.template }}
vault.hashicorp.com/agent-inject-template-{{ $file }}: {{ . | quote }}
{{- end }}
{{- end }}
{{- end -}}
{{- end -}}
