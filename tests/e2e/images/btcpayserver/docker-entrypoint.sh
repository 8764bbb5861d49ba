#!/usr/bin/env bash
# The stand-in image's /app/docker-entrypoint.sh: what btcpayserver/btcpayserver's (v2.4.1) does,
# written for this test bed. On every start it appends the default gateway as
# host.docker.internal to /etc/hosts; there is no `set -e`, so a write that fails (a read-only
# or foreign-owned /etc/hosts) is reported by bash and the start goes on. Then it execs the app
# with no arguments: everything comes from BTCPAY_* and the settings file.
# Not mirrored: the SSH key setup upstream runs when BTCPAY_SSHAUTHORIZEDKEYS names a file and
# BTCPAY_SSHKEYFILE is set (this image has no ssh-keygen; it says so and goes on).
gateway=$(/sbin/ip route | awk '/default/ { print $3 }')
echo "$gateway  host.docker.internal" >> /etc/hosts

if [ -f "$BTCPAY_SSHAUTHORIZEDKEYS" ] && [[ "$BTCPAY_SSHKEYFILE" ]]; then
  echo "archy e2e stand-in: BTCPAY_SSHKEYFILE is set, but this image has no ssh-keygen; skipping the SSH key" >&2
fi

exec dotnet BTCPayServer.dll
