{{/* Names, labels and the pod template shared by the three workloads. */}}

{{- define "kairosdb.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kairosdb.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "kairosdb.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "kairosdb.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Labels besides the selector labels. */}}
{{- define "kairosdb.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kairosdb.labels" -}}
{{ include "kairosdb.commonLabels" . }}
app.kubernetes.io/name: {{ include "kairosdb.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector labels of one component (server, ingest, query): dict "root" . "component" c */}}
{{- define "kairosdb.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kairosdb.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "kairosdb.secretName" -}}
{{- default (printf "%s-secret" (include "kairosdb.fullname" .)) .Values.secretConfig.existingSecret }}
{{- end }}

{{- define "kairosdb.checkMode" -}}
{{- if not (has .Values.mode (list "embedded" "cassandra")) }}
{{- fail (printf "mode must be embedded or cassandra, not %q" .Values.mode) }}
{{- end }}
{{- end }}

{{/*
The kairosdb.toml of the ConfigMap: one `key = value` line per entry of .Values.config.
Numbers arrive from YAML as float64 and are written as integers (every numeric key of the
server's configuration is an integer), strings quoted, booleans as they are.
*/}}
{{- define "kairosdb.configToml" -}}
# kairosdb-rs configuration (config/example.toml documents every key). The chart sets
# datastore, server_type, rollups, data_dir and the listeners per workload, as KAIROSDB_*
# variables, which win over this file.
{{- range $key, $value := .Values.config }}
{{- if kindIs "string" $value }}
{{ $key }} = {{ $value | quote }}
{{- else if or (kindIs "float64" $value) (kindIs "int64" $value) (kindIs "int" $value) }}
{{ $key }} = {{ int64 $value }}
{{- else if kindIs "bool" $value }}
{{ $key }} = {{ $value }}
{{- else }}
{{- fail (printf "config.%s: only strings, integers and booleans (got %s)" $key (kindOf $value)) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The pod template of a workload: dict "root" . "component" c "env" (list of env entries)
"resources" r "dataVolume" (a volume source for /data, or nil when a claim template
provides it).
*/}}
{{- define "kairosdb.podTemplate" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
metadata:
  labels:
    {{- include "kairosdb.commonLabels" $root | nindent 4 }}
    {{- include "kairosdb.selectorLabels" (dict "root" $root "component" .component) | nindent 4 }}
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- if and $v.secretConfig.enabled (not $v.secretConfig.existingSecret) }}
    checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
    {{- end }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $v.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
  {{- if $v.secretConfig.enabled }}
  # kairosdb.toml = the ConfigMap's file followed by the Secret's fragment.
  initContainers:
    - name: config
      image: "{{ $v.image.repository }}:{{ $v.image.tag | default $root.Chart.AppVersion }}"
      imagePullPolicy: {{ $v.image.pullPolicy }}
      command: ["bash", "-c", "cat /etc/kairosdb/config/kairosdb.toml /etc/kairosdb/secret/{{ $v.secretConfig.key }} > /etc/kairosdb/run/kairosdb.toml"]
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      volumeMounts:
        - { name: config, mountPath: /etc/kairosdb/config, readOnly: true }
        - { name: secret-config, mountPath: /etc/kairosdb/secret, readOnly: true }
        - { name: run-config, mountPath: /etc/kairosdb/run }
  {{- end }}
  containers:
    - name: kairosdb
      image: "{{ $v.image.repository }}:{{ $v.image.tag | default $root.Chart.AppVersion }}"
      imagePullPolicy: {{ $v.image.pullPolicy }}
      env:
        - name: KAIROSDB_CONFIG
          value: {{ ternary "/etc/kairosdb/run/kairosdb.toml" "/etc/kairosdb/config/kairosdb.toml" $v.secretConfig.enabled }}
        - name: KAIROSDB_DATA_DIR
          value: /data
        - name: KAIROSDB_BIND_ADDRESS
          value: "0.0.0.0:{{ $v.service.httpPort }}"
        - name: KAIROSDB_TELNET_BIND_ADDRESS
          value: "0.0.0.0:{{ $v.service.telnetPort }}"
        {{- toYaml .env | nindent 8 }}
        {{- with $v.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - { name: http, containerPort: {{ $v.service.httpPort }}, protocol: TCP }
        - { name: telnet, containerPort: {{ $v.service.telnetPort }}, protocol: TCP }
      startupProbe:
        httpGet: { path: /health/live, port: http }
        {{- toYaml $v.probes.startup | nindent 8 }}
      livenessProbe:
        httpGet: { path: /health/live, port: http }
        {{- toYaml $v.probes.liveness | nindent 8 }}
      readinessProbe:
        httpGet: { path: /health/ready, port: http }
        {{- toYaml $v.probes.readiness | nindent 8 }}
      resources:
        {{- toYaml .resources | nindent 8 }}
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      volumeMounts:
        - { name: data, mountPath: /data }
        {{- if $v.secretConfig.enabled }}
        - { name: run-config, mountPath: /etc/kairosdb/run, readOnly: true }
        {{- else }}
        - { name: config, mountPath: /etc/kairosdb/config, readOnly: true }
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "kairosdb.fullname" $root }}
    {{- if $v.secretConfig.enabled }}
    - name: secret-config
      secret:
        secretName: {{ include "kairosdb.secretName" $root }}
    - name: run-config
      emptyDir: { medium: Memory, sizeLimit: 1Mi }
    {{- end }}
    {{- with .dataVolume }}
    - name: data
      {{- toYaml . | nindent 6 }}
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
{{- end }}

{{/* KAIROSDB_* entries of the Cassandra workloads: dict "root" . "serverType" t "rollups" b */}}
{{- define "kairosdb.cassandraEnv" -}}
{{- $c := .root.Values.cassandra -}}
- name: KAIROSDB_DATASTORE
  value: cassandra
- name: KAIROSDB_CASSANDRA_CONTACT_POINTS
  value: {{ $c.contactPoints | quote }}
- name: KAIROSDB_CASSANDRA_KEYSPACE
  value: {{ $c.keyspace | quote }}
- name: KAIROSDB_SERVER_TYPE
  value: {{ .serverType | quote }}
- name: KAIROSDB_ROLLUPS
  value: {{ .rollups | quote }}
{{- if $c.credentialsSecret }}
- name: KAIROSDB_CASSANDRA_USER
  valueFrom:
    secretKeyRef: { name: {{ $c.credentialsSecret }}, key: {{ $c.userKey }} }
- name: KAIROSDB_CASSANDRA_PASSWORD
  valueFrom:
    secretKeyRef: { name: {{ $c.credentialsSecret }}, key: {{ $c.passwordKey }} }
{{- end }}
{{- end }}
