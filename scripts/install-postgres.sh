#!/usr/bin/env bash
# Installs Debian's PostgreSQL server and client (postgresql, postgresql-client), once. The
# project makes its own throw-away cluster with initdb from scripts/infra.sh, so the packaged
# service must not start: a policy-rc.d answering 101 ("action forbidden") is in place during
# the install and removed afterwards (unless the host already had one), and the cluster the
# package creates (`main`) is stopped and dropped, so nothing is left listening on 5432.
set -euo pipefail

PACKAGES=(postgresql postgresql-client)
missing() {
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || return 0
  command -v psql >/dev/null 2>&1 || return 0
  return 1
}
missing || exit 0

if [[ "$(id -u)" != 0 ]]; then
  echo "install-postgres: Debian's ${PACKAGES[*]} are missing; run 'make postgres-server' as" \
    "root (or install them with your package manager)" >&2
  exit 1
fi

POLICY=/usr/sbin/policy-rc.d
ours=0
if [[ ! -e "$POLICY" ]]; then
  printf '#!/bin/sh\n# Written by the provisioning project during its postgresql install.\nexit 101\n' >"$POLICY"
  chmod 755 "$POLICY"
  ours=1
fi
cleanup() { if ((ours)); then rm -f "$POLICY"; fi; }
trap cleanup EXIT

# Clusters that existed before the install are the host's: only a new one is dropped.
before="$(pg_lsclusters -h 2>/dev/null | awk '{print $1 "/" $2}' || true)"

echo "installing Debian's ${PACKAGES[*]} (the project's cluster is made by scripts/infra.sh)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null

pg_lsclusters -h 2>/dev/null | while read -r version name _; do
  if ! grep -qx -- "$version/$name" <<<"$before"; then
    echo "install-postgres: dropping the packaged cluster $version/$name the install made" >&2
    pg_dropcluster --stop "$version" "$name" || true
  fi
done
