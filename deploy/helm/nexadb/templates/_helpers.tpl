{{/* Chart name, overridable. */}}
{{- define "nexadb.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: fullnameOverride, else the release name when it already
contains the chart name, else "<release>-<chart>". Truncated to leave room for "-headless".
*/}}
{{- define "nexadb.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "nexadb.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the pods; never change them on an installed release. */}}
{{- define "nexadb.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nexadb.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "nexadb.labels" -}}
{{ include "nexadb.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: server
helm.sh/chart: {{ include "nexadb.chart" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "nexadb.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nexadb.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "nexadb.configMapName" -}}
{{- printf "%s-config" (include "nexadb.fullname" .) }}
{{- end }}

{{/* The Secret holding the API key: the operator's, or the one this chart creates. */}}
{{- define "nexadb.secretName" -}}
{{- if .Values.apiKey.existingSecret }}
{{- .Values.apiKey.existingSecret }}
{{- else }}
{{- printf "%s-api-key" (include "nexadb.fullname" .) }}
{{- end }}
{{- end }}

{{- define "nexadb.secretKey" -}}
{{- if .Values.apiKey.existingSecret }}
{{- required "apiKey.existingSecretKey must name the key inside apiKey.existingSecret" .Values.apiKey.existingSecretKey }}
{{- else }}
{{- print "api-key" }}
{{- end }}
{{- end }}

{{/* preStop sleep + drain + margin: the kubelet must not kill a server that is draining. */}}
{{- define "nexadb.terminationGracePeriodSeconds" -}}
{{- add .Values.shutdown.preStopSleepSeconds .Values.shutdown.graceSeconds .Values.shutdown.marginSeconds }}
{{- end }}

{{/* Fails the render on values that would deploy something broken or insecure. */}}
{{- define "nexadb.validate" -}}
{{- if and .Values.apiKey.value .Values.apiKey.existingSecret }}
{{- fail "set only one of apiKey.value and apiKey.existingSecret" }}
{{- end }}
{{- if not (or .Values.apiKey.value .Values.apiKey.existingSecret) }}
{{- fail "an API key is required: --set-string apiKey.value=\"$(openssl rand -hex 32)\", or create a Secret and set apiKey.existingSecret (see deploy/README.md)" }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.secretName) }}
{{- fail "tls.enabled needs tls.secretName: a kubernetes.io/tls Secret with tls.crt and tls.key (see deploy/README.md)" }}
{{- end }}
{{- if and .Values.tls.requireClientCerts (not .Values.tls.enabled) }}
{{- fail "tls.requireClientCerts needs tls.enabled" }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) }}
{{- fail "set only one of podDisruptionBudget.minAvailable and podDisruptionBudget.maxUnavailable (the other to null)" }}
{{- end }}
{{- end }}

{{/*
Probe target. Plaintext: the kubelet's native gRPC health check. TLS: the kubelet's gRPC probe
cannot speak TLS, so GET /status over HTTPS (503 while starting; the listener closes on
SIGTERM). mTLS: the kubelet has no client certificate, so a TCP connect to the gRPC port.
*/}}
{{- define "nexadb.probe" -}}
{{- $root := index . 0 -}}
{{- $service := index . 1 -}}
{{- if $root.Values.tls.requireClientCerts -}}
tcpSocket:
  port: 6970
{{- else if $root.Values.tls.enabled -}}
httpGet:
  scheme: HTTPS
  path: /status
  port: 6969
{{- else -}}
grpc:
  port: 6970
  {{- with $service }}
  service: {{ . }}
  {{- end }}
{{- end -}}
{{- end }}

{{/*
Cluster mode: every member as id=<pod>.<headless>.<namespace>.svc.<domain>:<raft port>.
*/}}
{{- define "nexadb.peers" -}}
{{- $full := include "nexadb.fullname" . -}}
{{- $peers := list -}}
{{- range $i := until (int .Values.replicaCount) -}}
{{- $peers = append $peers (printf "%d=%s-%d.%s-headless.%s.svc.%s:%d" (add1 $i) $full $i $full $.Release.Namespace $.Values.cluster.clusterDomain (int $.Values.cluster.raftPort)) -}}
{{- end -}}
{{- join "," $peers -}}
{{- end }}
