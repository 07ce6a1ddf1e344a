{{/* Chart name, truncated to the 63 characters a label value may hold. */}}
{{- define "slg.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name; components append their own suffix. */}}
{{- define "slg.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "slg.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "slg.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "slg.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "slg.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "gateway"). */}}
{{- define "slg.selectorLabels" -}}
app.kubernetes.io/name: {{ include "slg.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "slg.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "slg.upstreamSecret" -}}
{{- .Values.gateway.upstream.existingSecret | default (printf "%s-upstream" (include "slg.fullname" .)) -}}
{{- end -}}

{{- define "slg.redisSecret" -}}
{{- .Values.redis.auth.existingSecret | default (printf "%s-redis" (include "slg.fullname" .)) -}}
{{- end -}}

{{/* Container security context shared by every container of the chart. */}}
{{- define "slg.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* REDIS_PASSWORD then REDIS_URL (which expands it): the built-in Redis or redis.external.url, with
REDIS_CLUSTER when that names a Redis Cluster (the gateway and the operator must agree on it: the
operator's single-Redis writes are one MULTI across slots, which a cluster refuses). */}}
{{- define "slg.redisEnv" -}}
{{- if and .Values.redis.enabled .Values.redis.external.cluster }}
{{- fail "redis.external.cluster needs redis.enabled=false and redis.external.url (the built-in Redis is a single Redis)" }}
{{- end }}
{{- if .Values.redis.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "slg.redisSecret" . }}
      key: redis-password
- name: REDIS_URL
  value: "redis://:$(REDIS_PASSWORD)@{{ include "slg.fullname" . }}-redis:6379/0"
{{- else }}
- name: REDIS_URL
  value: {{ required "redis.external.url is required when redis.enabled is false" .Values.redis.external.url | quote }}
{{- if .Values.redis.external.cluster }}
- name: REDIS_CLUSTER
  value: "true"
{{- end }}
{{- end }}
{{- end -}}


{{/* Cluster-scoped objects are shared by every namespace: their names carry the release's namespace. */}}
{{- define "slg.clusterScopedName" -}}
{{- printf "%s-%s-operator" .Release.Namespace (include "slg.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "slg.tenantHashSecret" -}}
{{- .Values.tenantHashKey.existingSecret | default (printf "%s-tenant-hash" (include "slg.fullname" .)) -}}
{{- end -}}

{{/* The HMAC keys for the gateway and the operator: both must pseudonymise tenants and hash API keys
alike. KEY_HASH_SECRET is optional so that an existing Secret made for the open auth mode still works. */}}
{{- define "slg.tenantHashEnv" -}}
- name: TENANT_HASH_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "slg.tenantHashSecret" . }}
      key: tenant-hash-key
- name: KEY_HASH_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "slg.tenantHashSecret" . }}
      key: key-hash-secret
      optional: {{ ne .Values.auth.mode "keys" }}
- name: PRIVACY_MODE
  value: {{ .Values.privacy.mode | quote }}
{{- end -}}

{{/* Whether the gateway gets a routing file (gateway.routing declares upstreams or routes). */}}
{{- define "slg.routingEnabled" -}}
{{- if or .Values.gateway.routing.upstreams .Values.gateway.routing.routes }}true{{ end }}
{{- end }}

{{/* The environment variable that carries one declared upstream's key: UPSTREAM_<NAME>_API_KEY. */}}
{{- define "slg.upstreamKeyEnv" -}}
UPSTREAM_{{ . | upper | replace "-" "_" }}_API_KEY
{{- end }}

{{/* The keys of the declared upstreams, from their existingSecrets. */}}
{{- define "slg.routingEnv" -}}
{{- range .Values.gateway.routing.upstreams }}
{{- if .existingSecret }}
- name: {{ include "slg.upstreamKeyEnv" .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .existingSecretKey | default "api-key" }}
{{- end }}
{{- end }}
{{- end }}
