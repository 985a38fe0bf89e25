{{/* Name of the chart, overridable with nameOverride. */}}
{{- define "rollback-bot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: fullnameOverride, or <release>-<name> (just <release> when it already contains the name).
Truncated to 57 characters so that the longest suffix ("-state") keeps names within 63.
*/}}
{{- define "rollback-bot.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 57 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "rollback-bot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rollback-bot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rollback-bot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rollback-bot.labels" -}}
helm.sh/chart: {{ include "rollback-bot.chart" . }}
{{ include "rollback-bot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rollback-bot
{{- end }}

{{- define "rollback-bot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rollback-bot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret mounted at secretsDir: the chart's own or existingSecret. */}}
{{- define "rollback-bot.secretName" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecret }}
{{- else }}
{{- include "rollback-bot.fullname" . }}
{{- end }}
{{- end }}

{{- define "rollback-bot.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Distinct namespaces of the catalog's services, sorted, as a JSON list. */}}
{{- define "rollback-bot.catalogNamespaces" -}}
{{- $namespaces := list }}
{{- range $name, $service := .Values.catalog.services }}
{{- $namespaces = append $namespaces $service.namespace }}
{{- end }}
{{- $namespaces | uniq | sortAlpha | toJson }}
{{- end }}

{{/*
Namespaces whose workloads the bot may roll back, as a JSON list: rbac.namespaces, or else the
catalog's namespaces.
*/}}
{{- define "rollback-bot.watchedNamespaces" -}}
{{- if .Values.rbac.namespaces }}
{{- .Values.rbac.namespaces | uniq | sortAlpha | toJson }}
{{- else }}
{{- include "rollback-bot.catalogNamespaces" . }}
{{- end }}
{{- end }}

{{/*
The kinds the bot rolls back, as a sorted JSON list: each catalog service's `kind` (Deployment
when it names none) and rbac.extraKinds (for KIND/NAMESPACE/NAME the catalog does not list).
*/}}
{{- define "rollback-bot.workloadKinds" -}}
{{- $kinds := list }}
{{- range $name, $service := .Values.catalog.services }}
{{- $kinds = append $kinds (default "Deployment" $service.kind) }}
{{- end }}
{{- $kinds = concat $kinds (default (list) .Values.rbac.extraKinds) }}
{{- $kinds | uniq | sortAlpha | toJson }}
{{- end }}

{{/*
The rules where the workloads are (a Role per namespace, or the ClusterRole). Always: read and
patch Deployments, read their ReplicaSets (the revisions), record Events, and hold the rollback
Lease the bot keeps next to each workload (one rollback per service at a time across replicas;
the bot reads, creates, replaces and patches it, and never lists or deletes). Then, only for the
kinds of rollback-bot.workloadKinds, what rolling that kind back needs:
- StatefulSet, DaemonSet: read and patch them, read their ControllerRevisions (the revisions);
- BlueGreen: read and patch the Service that routes traffic (its selector picks the colour),
  read its EndpointSlices (has the switch taken effect); the colours are Deployments, patched
  (scaled up) with the Deployment rule;
- Rollout: read and patch Argo Rollouts (the undo), patch their status (the abort).
With Deployments alone the rules are the first five only.
*/}}
{{- define "rollback-bot.rolloutRules" -}}
{{- $kinds := include "rollback-bot.workloadKinds" . | fromJsonArray -}}
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "list", "create", "update"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- if has "StatefulSet" $kinds }}
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}
{{- if has "DaemonSet" $kinds }}
- apiGroups: ["apps"]
  resources: ["daemonsets"]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}
{{- if or (has "StatefulSet" $kinds) (has "DaemonSet" $kinds) }}
- apiGroups: ["apps"]
  resources: ["controllerrevisions"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- if has "BlueGreen" $kinds }}
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- if has "Rollout" $kinds }}
- apiGroups: ["argoproj.io"]
  resources: ["rollouts"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["argoproj.io"]
  resources: ["rollouts/status"]
  verbs: ["patch"]
{{- end }}
{{- end }}

{{/*
Checks no schema can express; included by the Deployment so that a bad combination fails every
render with a message that says what to set.
*/}}
{{- define "rollback-bot.validate" -}}
{{- if and .Values.secret.create .Values.existingSecret }}
{{- fail "set either secret.create=true (the chart makes the Secret) or existingSecret (a Secret you made), not both" }}
{{- end }}
{{- if not (or .Values.secret.create .Values.existingSecret) }}
{{- fail "the Slack tokens come from nowhere: set secret.create=true with secret.slackBotToken and secret.slackSigningSecret, or existingSecret=<name of a Secret with SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET>" }}
{{- end }}
{{- if .Values.secret.create }}
{{- $_ := required "secret.slackBotToken is required (or set secret.create=false and existingSecret=<Secret name>)" .Values.secret.slackBotToken }}
{{- if not .Values.secret.slackAppToken }}
{{- $_ := required "secret.slackSigningSecret is required in Slack HTTP mode (or set secret.slackAppToken for Socket Mode)" .Values.secret.slackSigningSecret }}
{{- end }}
{{- end }}
{{- if and .Values.rbac.create .Values.rbac.namespaces (not .Values.rbac.clusterWide) }}
{{- range $name, $service := .Values.catalog.services }}
{{- if not (has $service.namespace $.Values.rbac.namespaces) }}
{{- fail (printf "catalog service %q is in namespace %q, which rbac.namespaces does not list: add it, or leave rbac.namespaces empty to use the catalog's namespaces" $name $service.namespace) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.ingress.hosts) }}
{{- fail "ingress.enabled needs at least one host in ingress.hosts" }}
{{- end }}
{{- end }}
