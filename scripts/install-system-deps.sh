#!/usr/bin/env bash
# Install the Debian packages the test-suite and the app need (real servers, no mocks):
#   redis-server, postgresql (15: initdb/pg_ctl/postgres), nginx, chromium.
# Only what is missing gets installed, so a second run takes well under a second.
# The packages' own services are never left running: the tests start private
# servers on free loopback ports and must not collide with (or depend on) them.
set -euo pipefail

# package name -> a file it provides (cheap sanity check on top of dpkg's status)
declare -A PROVIDES=(
  [redis-server]=/usr/bin/redis-server
  [postgresql]=/usr/lib/postgresql/15/bin/postgres
  [nginx]=/usr/sbin/nginx
  [chromium]=/usr/bin/chromium
)
# package name -> the init service its postinst would start
declare -A SERVICE=([redis-server]=redis-server [postgresql]=postgresql [nginx]=nginx)

is_installed() {
  local status
  status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)
  [[ $status == "install ok installed" && -e ${PROVIDES[$1]} ]]
}

missing=()
for pkg in redis-server postgresql nginx chromium; do
  is_installed "$pkg" || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
  echo "system-deps: all present (redis-server postgresql nginx chromium)"
  exit 0
fi

# apt needs root; use sudo when run by a normal user on a dev box.
SUDO=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || { echo "system-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=(sudo)
fi

echo "system-deps: installing ${missing[*]}"
start=$SECONDS

# policy-rc.d exiting 101 tells invoke-rc.d / deb-systemd-invoke "do not start services".
# Docker images often already ship one: keep a copy and put it back afterwards.
POLICY=/usr/sbin/policy-rc.d
backup=$(mktemp)
had_policy=0
if [[ -e $POLICY ]]; then
  had_policy=1
  "${SUDO[@]}" cp -p "$POLICY" "$backup"
fi
restore_policy() {
  if ((had_policy)); then
    "${SUDO[@]}" cp -p "$backup" "$POLICY"
  else
    "${SUDO[@]}" rm -f "$POLICY"
  fi
  rm -f "$backup"
}
trap restore_policy EXIT
printf '#!/bin/sh\n# written by tokenwise scripts/install-system-deps.sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
"${SUDO[@]}" chmod 755 "$POLICY"

export DEBIAN_FRONTEND=noninteractive
# Lock timeout: on a fresh CI VM unattended-upgrades may hold the dpkg lock for a while.
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300)
# Package lists on a fresh machine are missing or stale, so refresh before installing.
"${APT[@]}" update
"${APT[@]}" install --no-install-recommends "${missing[@]}"

restore_policy
trap - EXIT

# Belt and braces: if a service got started anyway (e.g. a policy-rc.d-ignoring init),
# stop it. Only for packages installed just now, so a pre-existing setup is left alone.
for pkg in "${missing[@]}"; do
  svc=${SERVICE[$pkg]:-}
  [[ -n $svc ]] || continue
  if "${SUDO[@]}" service "$svc" status >/dev/null 2>&1; then
    echo "system-deps: stopping auto-started service $svc"
    "${SUDO[@]}" service "$svc" stop >/dev/null 2>&1 || true
  fi
done

for pkg in "${missing[@]}"; do
  is_installed "$pkg" || { echo "system-deps: $pkg still missing after install" >&2; exit 1; }
done
echo "system-deps: done in $((SECONDS - start))s"
