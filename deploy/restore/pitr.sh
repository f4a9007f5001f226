#!/usr/bin/env bash
# Point-in-time recovery of the event store: a NEW CloudNativePG cluster bootstrapped from the
# base backups and archived WAL of kith-pg (barman-cloud plugin, ObjectStore kith-pg-backups),
# replayed up to --target-time. The old cluster is left alone; docs/operations.md "Backup and
# restore" says how to switch the processes over.
#
#   deploy/restore/pitr.sh --target-time '2026-11-30 12:00:00+00' [--name kith-pg-restored]
#                          [--namespace kith] [--source kith-pg] [--dry-run]
#
# --dry-run prints the manifest instead of applying it (and waiting for the cluster).
set -euo pipefail

name=kith-pg-restored
namespace=kith
source=kith-pg
store=kith-pg-backups
target=""
dry_run=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --target-time) target="$2"; shift 2 ;;
    --name) name="$2"; shift 2 ;;
    --namespace) namespace="$2"; shift 2 ;;
    --source) source="$2"; shift 2 ;;
    --object-store) store="$2"; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    *) echo "pitr.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [[ -z "$target" ]]; then
  echo "pitr.sh: --target-time is required (e.g. '2026-11-30 12:00:00+00', with a zone)" >&2
  exit 2
fi

manifest=$(cat <<YAML
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: ${name}
  namespace: ${namespace}
spec:
  instances: 3
  imageName: ghcr.io/cloudnative-pg/postgresql:17
  enableSuperuserAccess: true
  postgresql:
    parameters:
      max_connections: "400"
      superuser_reserved_connections: "3"
      shared_buffers: 512MB
    synchronous:
      method: any
      number: 1
      dataDurability: required
  storage:
    size: 50Gi
  bootstrap:
    recovery:
      source: ${source}-archive
      recoveryTarget:
        targetTime: "${target}"
  externalClusters:
  - name: ${source}-archive
    plugin:
      name: barman-cloud.cloudnative-pg.io
      parameters:
        barmanObjectName: ${store}
        serverName: ${source}
YAML
)

if $dry_run; then
  printf '%s\n' "$manifest"
  exit 0
fi
printf '%s\n' "$manifest" | kubectl apply -f -
echo "waiting for ${namespace}/${name} to finish recovery (this replays WAL up to ${target})"
kubectl -n "$namespace" wait "cluster.postgresql.cnpg.io/${name}" --for=condition=Ready \
  --timeout=2h
echo "recovered: ${name}; next steps in docs/operations.md, 'Backup and restore'"
