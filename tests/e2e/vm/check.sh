#!/bin/bash
# Run in the VM by the admin (root, at the console); the scenario installs it from the payload
# disk as /usr/local/sbin/archy-vm-check:
#   check.sh SECONDS APP...
# Waits up to SECONDS for every APP to be active and healthy by `archy-hook status` (which, run
# as root, shows the service user's apps), then prints what the boot-chain scenario asserts, one
# fact per line as "key value...":
#   healthy yes|no           every APP active/running and healthy in time
#   app ID STATE HEALTH RESTARTS ACTIVE_US   per APP; ACTIVE_US: when its unit turned active
#                            (CLOCK_MONOTONIC µs: since the kernel started)
#   uptime_s S               the kernel's uptime now
#   manager STATE ACTIVE_US  the service user's user@UID.service
#   linger yes|no            logind's Linger for the service user
#   user_sessions N          the service user's sessions that are logins (class user*), not
#                            its manager's own (class manager*, since systemd 256)
#   wait_online STATE RESULT LOAD   podman-user-wait-network-online.service in its manager
#   masked N                 units masked (linked to /dev/null) in the user's or /etc's unit dirs
#   generated N              archy-*.service the generator wrote for this boot of the manager
#   journal ID N B           the journal's entries with ARCHY_APP=ID: N in all, B this boot (a
#                            start that has nothing to create or change logs nothing)
#   resources_failures N     units of the user's that failed with result 'resources' this boot
set -u
deadline=$(( $(date +%s) + $1 )); shift
user=archy
uid=$(id -u "$user")
status_json() { archy-hook status --json 2>/dev/null; }
ok=no
while :; do
  json=$(status_json)
  bad=0
  for app in "$@"; do
    row=$(jq -c --arg a "$app" 'select(.app == $a)' <<<"$json")
    [ "$(jq -r .state <<<"$row" 2>/dev/null)" = active/running ] && [ "$(jq -r .health <<<"$row" 2>/dev/null)" = healthy ] ||
      bad=$((bad + 1))
  done
  [ "$bad" = 0 ] && { ok=yes; break; }
  [ "$(date +%s)" -lt "$deadline" ] || break
  sleep 3
done
echo "healthy $ok"
U() { runuser -u "$user" -- env XDG_RUNTIME_DIR="/run/user/$uid" DBUS_SESSION_BUS_ADDRESS="unix:path=/run/user/$uid/bus" "$@"; }
for app in "$@"; do
  row=$(jq -c --arg a "$app" 'select(.app == $a)' <<<"$json")
  at=$(cd / && U systemctl --user show -p ActiveEnterTimestampMonotonic --value "archy-$app.service")
  echo "app $app $(jq -r '"\(.state) \(.health // "-") \(.restarts // "-")"' <<<"$row") ${at:-0}"
done
echo "uptime_s $(cut -d' ' -f1 /proc/uptime)"
echo "manager $(systemctl show -p ActiveState --value "user@$uid.service") $(systemctl show -p ActiveEnterTimestampMonotonic --value "user@$uid.service")"
echo "linger $(loginctl show-user "$user" -p Linger --value)"
n=0
for s in $(loginctl show-user "$user" -p Sessions --value); do
  case $(loginctl show-session "$s" -p Class --value) in user*) n=$((n + 1)) ;; esac
done
echo "user_sessions $n"
cd /
echo "wait_online $(U systemctl --user show -p ActiveState --value podman-user-wait-network-online.service) $(U systemctl --user show -p Result --value podman-user-wait-network-online.service) $(U systemctl --user show -p LoadState --value podman-user-wait-network-online.service)"
echo "masked $(find /etc/systemd/user "/run/user/$uid/systemd" "$(getent passwd "$user" | cut -d: -f6)/.config/systemd" -lname /dev/null 2>/dev/null | wc -l)"
echo "generated $(ls "/run/user/$uid/systemd/generator"/archy-*.service 2>/dev/null | wc -l)"
for app in "$@"; do
  echo "journal $app $(journalctl -q --no-pager "ARCHY_APP=$app" -o cat | wc -l) $(journalctl -q -b --no-pager "ARCHY_APP=$app" -o cat | wc -l)"
done
echo "resources_failures $(journalctl -q -b --no-pager "_UID=$uid" -o cat | grep -c "Failed with result 'resources'")"
