{{/* The chart's name, or nameOverride. */}}
{{- define "inferprobe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of the release's objects: fullnameOverride, else the release name where it already
contains the chart's name, else both. Cut to 63 characters, the limit of a label value.
*/}}
{{- define "inferprobe.fullname" -}}
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

{{/* The labels the Deployment, the Service and the monitors select on; never change them. */}}
{{- define "inferprobe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inferprobe.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: prober
{{- end }}

{{/* The labels of every object. */}}
{{- define "inferprobe.labels" -}}
{{ include "inferprobe.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: inferprobe
{{- end }}

{{/* The image reference: a digest wins over the tag, the tag defaults to appVersion. */}}
{{- define "inferprobe.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "inferprobe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "inferprobe.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The configuration file's text: configText as given, else config as YAML. */}}
{{- define "inferprobe.config" -}}
{{- if .Values.configText }}
{{- .Values.configText }}
{{- else }}
{{- toYaml .Values.config }}
{{- end }}
{{- end }}
