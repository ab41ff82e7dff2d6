#!/bin/sh
# The compose image's start: the cn=config and entries made once in the volume (as
# scripts/infra.sh does), then slapd in the foreground on port 389.
set -eu
DIR=/var/lib/ldap-project
: "${LDAP_ADMIN_PASSWORD:=admin-password}"
: "${LDAP_READER_PASSWORD:=reader-password}"
if [ ! -f "$DIR/.complete" ]; then
  mkdir -p "$DIR/slapd.d" "$DIR/data"
  admin_hash="$(slappasswd -s "$LDAP_ADMIN_PASSWORD")"
  reader_hash="$(slappasswd -s "$LDAP_READER_PASSWORD")"
  for f in config base; do
    sed -e "s|@LDAP_DIR@|$DIR|g" -e "s|@SCHEMA_DIR@|/opt/ldap/schema|g" \
      -e "s|@MODULE_DIR@|/usr/lib/ldap|g" -e "s|@ADMIN_HASH@|$admin_hash|g" \
      -e "s|@READER_HASH@|$reader_hash|g" "/opt/ldap/$f.ldif" >"$DIR/$f.ldif"
  done
  slapadd -n 0 -F "$DIR/slapd.d" -l "$DIR/config.ldif"
  slapadd -n 1 -F "$DIR/slapd.d" -l "$DIR/base.ldif"
  rm -f "$DIR/config.ldif" "$DIR/base.ldif"
  date -u +%FT%TZ >"$DIR/.complete"
fi
exec slapd -d 0 -F "$DIR/slapd.d" -h "ldap:///"
