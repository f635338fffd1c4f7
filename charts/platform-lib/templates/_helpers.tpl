{{/*
Names and labels. Every template takes the chart's root context (.) unless it says otherwise.
*/}}

{{- define "platform-lib.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Truncated to 55 so "<fullname>-preview" still fits a 63-character DNS label. */}}
{{- define "platform-lib.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 55 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 55 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 55 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "platform-lib.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "platform-lib.selectorLabels" -}}
app.kubernetes.io/name: {{ include "platform-lib.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "platform-lib.labels" -}}
helm.sh/chart: {{ include "platform-lib.chart" . }}
{{ include "platform-lib.selectorLabels" . }}
app.kubernetes.io/version: {{ include "platform-lib.imageTag" (dict "root" . "colour" "") | quote }}
app.kubernetes.io/component: {{ .Values.component }}
app.kubernetes.io/part-of: trading-platform
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "platform-lib.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "platform-lib.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* dict root colour: the colour's own tag, else image.tag, else global.imageTag, else the chart's appVersion. */}}
{{- define "platform-lib.imageTag" -}}
{{- $v := .root.Values -}}
{{- $colourTag := "" -}}
{{- if and .colour $v.blueGreen -}}{{- $colourTag = get (default dict $v.blueGreen.imageTags) .colour -}}{{- end -}}
{{- $colourTag | default $v.image.tag | default $v.global.imageTag | default .root.Chart.AppVersion | toString -}}
{{- end -}}

{{- define "platform-lib.image" -}}
{{- $registry := .root.Values.global.imageRegistry -}}
{{- $repository := .root.Values.image.repository -}}
{{- if $registry -}}{{- $repository = printf "%s/%s" (trimSuffix "/" $registry) $repository -}}{{- end -}}
{{- printf "%s:%s" $repository (include "platform-lib.imageTag" .) -}}
{{- end -}}

{{/* Blue-green is off under Argo Rollouts (the Rollout owns both colours) and when blueGreen.enabled is false. */}}
{{- define "platform-lib.blueGreen" -}}
{{- if and .Values.blueGreen .Values.blueGreen.enabled (not (and .Values.argoRollouts .Values.argoRollouts.enabled)) -}}
true
{{- end -}}
{{- end -}}

{{- define "platform-lib.activeColour" -}}
{{- if .Values.blueGreen -}}{{ .Values.blueGreen.activeColour | default "blue" }}{{- else -}}blue{{- end -}}
{{- end -}}

{{- define "platform-lib.idleColour" -}}
{{- ternary "green" "blue" (eq (include "platform-lib.activeColour" .) "blue") -}}
{{- end -}}

{{- define "platform-lib.argoRollouts" -}}
{{- if and .Values.argoRollouts .Values.argoRollouts.enabled -}}true{{- end -}}
{{- end -}}

{{/* The name and port of the port clients call: gRPC for the services, HTTP for the paper exchange. */}}
{{- define "platform-lib.mainPortName" -}}
{{- if .Values.grpc -}}grpc{{- else -}}http{{- end -}}
{{- end -}}

{{/* A gRPC service that also serves HTTP (the gateway: health over gRPC, its API over http.port): a second port. */}}
{{- define "platform-lib.extraHttp" -}}
{{- if and .Values.grpc .Values.http -}}true{{- end -}}
{{- end -}}

{{- define "platform-lib.mainPort" -}}
{{- if .Values.grpc -}}{{ .Values.grpc.port }}{{- else -}}{{ .Values.http.port }}{{- end -}}
{{- end -}}

{{/*
The service's non-secret environment as a YAML map. The chart sets the platform keys (Kafka, Redis, Vault login,
gRPC, metrics); `config.<section>.<camelCaseKey>` becomes TRADING_<SECTION>__<SNAKE_CASE_KEY> (a list becomes JSON,
a string goes through tpl). Empty strings and nulls are left out so the service's own default applies.
*/}}
{{- define "platform-lib.env" -}}
{{- $root := . -}}
{{- $v := .Values -}}
{{- $env := dict -}}
{{- if $v.grpc -}}
{{- $_ := set $env "TRADING_SERVICE_NAME" .Chart.Name -}}
{{- $_ := set $env "TRADING_KAFKA__BOOTSTRAP_SERVERS" (required "global.kafkaBootstrapServers is required" $v.global.kafkaBootstrapServers) -}}
{{- $_ := set $env "TRADING_REDIS__URL" (required "global.redisUrl is required" $v.global.redisUrl) -}}
{{- $_ := set $env "TRADING_VAULT__ADDR" (required "global.vaultAddr is required" $v.global.vaultAddr) -}}
{{- $_ := set $env "TRADING_VAULT__AUTH_METHOD" "kubernetes" -}}
{{- $_ := set $env "TRADING_VAULT__KUBERNETES_ROLE" (default .Chart.Name $v.vault.role) -}}
{{- $_ := set $env "TRADING_GRPC__HOST" "0.0.0.0" -}}
{{- $_ := set $env "TRADING_GRPC__PORT" (toString $v.grpc.port) -}}
{{- $_ := set $env "TRADING_GRPC__HEALTH_PORT" (toString (required "grpc.healthPort is required: the probes cannot present the client certificate the gRPC port asks for" $v.grpc.healthPort)) -}}
{{- $_ := set $env "TRADING_TELEMETRY__METRICS_PORT" (ternary (toString $v.metrics.port) "0" $v.metrics.enabled) -}}
{{- /* metrics listen on loopback unless opened: in a pod the scraper comes from another pod (NetworkPolicy decides) */}}
{{- if $v.metrics.enabled }}{{ $_ := set $env "TRADING_TELEMETRY__METRICS_HOST" "0.0.0.0" }}{{ end -}}
{{- end -}}
{{- $env = merge (include "platform-lib.configEnv" (dict "root" $root "config" $v.config) | fromYaml) $env -}}
{{- range $name, $value := $env }}
{{ $name }}: {{ $value | quote }}
{{- end -}}
{{- end -}}

{{/* dict root config: `config`-shaped values as a YAML map of TRADING_* variables (see platform-lib.env). */}}
{{- define "platform-lib.configEnv" -}}
{{- $root := .root -}}
{{- $env := dict -}}
{{- range $section, $keys := .config -}}
{{- range $key, $value := $keys -}}
{{- if not (or (kindIs "invalid" $value) (and (kindIs "string" $value) (eq $value ""))) -}}
{{- $name := printf "TRADING_%s__%s" (snakecase $section | upper) (snakecase $key | upper) -}}
{{- if kindIs "slice" $value -}}
{{- $_ := set $env $name (toJson $value) -}}
{{- else if and (kindIs "float64" $value) (eq (floor $value) $value) -}}
{{- $_ := set $env $name (printf "%d" (int64 $value)) -}}
{{- else -}}
{{- $_ := set $env $name (tpl (toString $value) $root) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $env -}}
{{- end -}}
