{{/* Chart name, truncated to the 63 characters DNS labels allow. */}}
{{- define "virtnet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name prefix of every object: fullnameOverride, else "<release>-virtnet" (or "<release>"). */}}
{{- define "virtnet.fullname" -}}
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

{{- define "virtnet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. managed-by is Helm: virtnet never prunes its own installation. */}}
{{- define "virtnet.labels" -}}
helm.sh/chart: {{ include "virtnet.chart" . }}
app.kubernetes.io/name: {{ include "virtnet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: virtnet
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component ("controller" or "agent"); pass (dict "ctx" $ "component" "..."). */}}
{{- define "virtnet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "virtnet.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "virtnet.componentLabels" -}}
{{ include "virtnet.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "virtnet.controllerName" -}}
{{- printf "%s-controller" (include "virtnet.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "virtnet.agentName" -}}
{{- printf "%s-agent" (include "virtnet.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "virtnet.controllerServiceAccountName" -}}
{{- default (include "virtnet.controllerName" .) .Values.serviceAccount.controllerName }}
{{- end }}

{{- define "virtnet.agentServiceAccountName" -}}
{{- default (include "virtnet.agentName" .) .Values.serviceAccount.agentName }}
{{- end }}

{{- define "virtnet.leaseName" -}}
{{- default (include "virtnet.fullname" .) .Values.controller.leaderElection.leaseName }}
{{- end }}

{{/* The image reference: repository@digest when a digest is given, else repository:tag (tag defaults to appVersion). */}}
{{- define "virtnet.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Pod-level securityContext. On OpenShift (openshift.enabled) uid/gid/fsGroup are left to the SCC, which
assigns them from the namespace's range; elsewhere the image's non-root uid 65532 is pinned.
*/}}
{{- define "virtnet.podSecurityContext" -}}
runAsNonRoot: true
{{- if not .Values.openshift.enabled }}
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Config file path inside the controller container. */}}
{{- define "virtnet.configPath" -}}/etc/virtnet/config.yaml{{- end }}

{{/*
The Lease timings' relations, which values.schema.json cannot state (JSON Schema compares a value with
constants only): the controller refuses them at start (reconciler/server/config.py), so refuse them here at
install time instead of shipping a crash-looping Deployment. client-go's rules: renewDeadline < leaseDuration,
and renewDeadline > 1.2 x retryPeriod (its jitter factor).
*/}}
{{- define "virtnet.checkLeaseTimings" -}}
{{- $le := .Values.controller.leaderElection -}}
{{- $duration := int $le.leaseDurationSeconds -}}
{{- $deadline := int $le.renewDeadlineSeconds -}}
{{- $retry := int $le.retryPeriodSeconds -}}
{{- if ge $deadline $duration -}}
{{- fail (printf "controller.leaderElection.renewDeadlineSeconds (%d) must be less than leaseDurationSeconds (%d): a leader must give up before the others may take over" $deadline $duration) -}}
{{- end -}}
{{- if ge (mul $retry 6) (mul $deadline 5) -}}
{{- fail (printf "controller.leaderElection.renewDeadlineSeconds (%d) must be more than 1.2 x retryPeriodSeconds (%d), as client-go's leader election requires" $deadline $retry) -}}
{{- end -}}
{{- end -}}

{{/* A Prometheus duration made of one unit ("30m", "2h", "90s") in seconds, for comparisons with time(). */}}
{{- define "virtnet.seconds" -}}
{{- $units := dict "s" 1 "m" 60 "h" 3600 "d" 86400 "w" 604800 -}}
{{- $unit := regexFind "[smhdw]$" . -}}
{{- if not $unit -}}{{- fail (printf "%q: give a duration in one unit (90s, 30m, 2h, 1d)" .) -}}{{- end -}}
{{- mul (trimSuffix $unit . | int) (get $units $unit) -}}
{{- end -}}

{{- /* Each notification provider's name keys its mounted Secret's volume and its rate limit: unique. */ -}}
{{- define "virtnet.checkNotifications" -}}
{{- $seen := dict -}}
{{- range .Values.config.notifications.providers -}}
{{- if hasKey $seen .name -}}
{{- fail (printf "config.notifications.providers: notification provider names must be unique: %s given twice" .name) -}}
{{- end -}}
{{- $_ := set $seen .name true -}}
{{- end -}}
{{- end -}}
