{{/* Names, labels and the pieces both the control Deployment and the node DaemonSet use. */}}

{{- define "warren.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "warren.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "warren.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "warren.labels" -}}
helm.sh/chart: {{ include "warren.chart" . }}
app.kubernetes.io/name: {{ include "warren.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: call with (dict "ctx" $ "component" "control"). */}}
{{- define "warren.selectorLabels" -}}
app.kubernetes.io/name: {{ include "warren.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "warren.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "warren.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "warren.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret the chart creates for the database and Redis URLs. */}}
{{- define "warren.configSecretName" -}}
{{- printf "%s-config" (include "warren.fullname" .) }}
{{- end }}

{{- define "warren.databaseSecretName" -}}
{{- default (include "warren.configSecretName" .) .Values.database.existingSecret }}
{{- end }}

{{- define "warren.redisSecretName" -}}
{{- default (include "warren.configSecretName" .) .Values.redis.existingSecret }}
{{- end }}

{{- define "warren.clusterSecretName" -}}
{{- default (printf "%s-cluster" (include "warren.fullname" .)) .Values.clusterSecret.existingSecret }}
{{- end }}

{{- define "warren.adminKeySecretName" -}}
{{- default (printf "%s-admin-key" (include "warren.fullname" .)) .Values.adminKey.existingSecret }}
{{- end }}

{{- define "warren.redisEnabled" -}}
{{- if or .Values.redis.url .Values.redis.existingSecret }}true{{ end }}
{{- end }}

{{- define "warren.publicURL" -}}
{{- if .Values.publicURL }}
{{- .Values.publicURL }}
{{- else if and .Values.ingress.enabled .Values.ingress.tls.enabled }}
{{- printf "https://%s" .Values.ingress.api.host }}
{{- end }}
{{- end }}

{{/* The environment every warren container shares: the role's own comes after it. */}}
{{- define "warren.commonEnv" -}}
- name: WARREN_DOMAIN
  value: {{ required "domain is required: the wildcard sandbox domain, e.g. sandbox.example.com (--set domain=...)" .Values.domain | quote }}
- name: WARREN_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: WARREN_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: WARREN_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "warren.databaseSecretName" . }}
      key: {{ if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}database-url{{ end }}
{{- if include "warren.redisEnabled" . }}
- name: WARREN_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "warren.redisSecretName" . }}
      key: {{ if .Values.redis.existingSecret }}{{ .Values.redis.existingSecretKey }}{{ else }}redis-url{{ end }}
{{- end }}
- name: WARREN_CLUSTER_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "warren.clusterSecretName" . }}
      key: {{ if .Values.clusterSecret.existingSecret }}{{ .Values.clusterSecret.existingSecretKey }}{{ else }}cluster-secret{{ end }}
- name: WARREN_ADMIN_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "warren.adminKeySecretName" . }}
      key: {{ if .Values.adminKey.existingSecret }}{{ .Values.adminKey.existingSecretKey }}{{ else }}admin-key{{ end }}
{{- with include "warren.publicURL" . }}
- name: WARREN_PUBLIC_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The host paths a node (and its doctor) work in. */}}
{{- define "warren.nodeMounts" -}}
- name: data
  mountPath: /var/lib/warren
  mountPropagation: Bidirectional
- name: cache
  mountPath: /var/cache/warren
- name: cgroup
  mountPath: /sys/fs/cgroup
- name: netns
  mountPath: /run/netns
  mountPropagation: Bidirectional
{{- end }}
