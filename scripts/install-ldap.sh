#!/usr/bin/env bash
# Installs Debian's OpenLDAP server and client tools (slapd, ldap-utils) and the headers
# python-ldap builds against (libldap2-dev, libsasl2-dev), once. The project runs its own
# slapd from scripts/infra.sh with a cn=config of its own, so the packaged service must not
# start: a policy-rc.d answering 101 ("action forbidden") is in place during the install and
# removed afterwards (unless the host already had one), and nothing is left listening on 389.
set -euo pipefail

PACKAGES=(slapd ldap-utils libldap2-dev libsasl2-dev)
missing() {
  command -v /usr/sbin/slapd >/dev/null 2>&1 || return 0
  command -v ldapsearch >/dev/null 2>&1 || return 0
  [[ -f /usr/include/ldap.h && -f /usr/include/sasl/sasl.h ]] || return 0
  return 1
}
missing || exit 0

if [[ "$(id -u)" != 0 ]]; then
  echo "install-ldap: Debian's ${PACKAGES[*]} are missing; run 'make ldap-server' as root" \
    "(or install them with your package manager)" >&2
  exit 1
fi

POLICY=/usr/sbin/policy-rc.d
ours=0
if [[ ! -e "$POLICY" ]]; then
  printf '#!/bin/sh\n# Written by the provisioning project during its slapd install.\nexit 101\n' >"$POLICY"
  chmod 755 "$POLICY"
  ours=1
fi
cleanup() { if ((ours)); then rm -f "$POLICY"; fi; }
trap cleanup EXIT

echo "installing Debian's ${PACKAGES[*]} (the project's slapd is started by scripts/infra.sh)"
apt-get update -qq
# Preseeded so the package's own configuration step asks nothing and creates no database
# that anyone uses.
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null

# Belt and braces: a packaged slapd that started anyway (an init system without policy-rc.d
# support) is stopped, so the host keeps no second directory server.
if pid="$(pgrep -x slapd -d ' ' --uid 0 2>/dev/null)"; then
  for p in $pid; do
    if grep -q -- '/etc/ldap' "/proc/$p/cmdline" 2>/dev/null; then
      echo "install-ldap: stopping the packaged slapd (pid $p) the install started" >&2
      kill "$p" || true
    fi
  done
fi
