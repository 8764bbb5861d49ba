# Rendered by archy-hook render for {{ app.id }}: edit the template, not this file.
#
# Creates lnd's wallet without a human: run once by `archy-hook init {{ app.id }}` (the app's
# [[init]] step `wallet`) in a one-off container of lnd's image without a network, before lnd's
# first start. It starts lnd without a chain backend, asks it for a new seed (REST genseed),
# prints the seed on standard output, creates the wallet from it with the password archy
# generated (REST initwallet) and stops lnd. archy keeps the output 0600 and never logs it
# (`archy-hook reveal {{ app.id }} wallet` shows it). Everything else goes to standard error,
# the unit's journal. The seed and the password travel in files in /dev/shm (memory), never on a
# command line.
set -euo pipefail
umask 077

dir=/root/.lnd
rest=https://localhost:8080
pwfile=/run/secrets/lnd-wallet/password
body=/dev/shm/archy-initwallet.json
seedfile=/dev/shm/archy-genseed.json

[ -s "$pwfile" ] || { echo "create-wallet: no wallet password at $pwfile" >&2; exit 1; }

# lnd's own log goes to the journal; a chain backend is not needed to create a wallet, and the
# password file (set in lnd.conf) may be given before the wallet exists only with allow-create
lnd --configfile=/etc/lnd/lnd.conf --bitcoin.node=nochainbackend --wallet-unlock-allow-create >&2 &
lnd_pid=$!
stop_lnd() {
  rm -f "$body" "$seedfile"
  kill -TERM "$lnd_pid" 2>/dev/null || true
  wait "$lnd_pid" 2>/dev/null || true
}
trap stop_lnd EXIT

call() { wget -q -O - --ca-certificate="$dir/tls.cert" "$@"; }

state=
for _ in $(seq 120); do
  if [ -s "$dir/tls.cert" ] && out=$(call "$rest/v1/state" 2>/dev/null); then
    state=$(printf %s "$out" | jq -r .state)
    break
  fi
  kill -0 "$lnd_pid" 2>/dev/null || { echo "create-wallet: lnd exited before it served" >&2; exit 1; }
  sleep 1
done
if [ "$state" != NON_EXISTING ]; then
  echo "create-wallet: lnd reports state '${state:-none within 120 s}', not NON_EXISTING: not creating a wallet" >&2
  exit 1
fi

# the seed and the password only ever in files in memory, never in an argument
call "$rest/v1/genseed" >"$seedfile" || { echo "create-wallet: genseed failed" >&2; exit 1; }
jq -e '.cipher_seed_mnemonic | length == 24' "$seedfile" >/dev/null ||
  { echo "create-wallet: genseed returned no 24-word seed" >&2; exit 1; }

# the seed before the wallet is made of it: archy keeps this output whenever the wallet exists
# afterwards, even if a later step fails, and drops it when it does not
echo "lnd wallet seed for {{ app.id }} on {{ node.network }}: 24 words (aezeed), no seed passphrase"
echo "created $(date -u '+%Y-%m-%d %H:%M:%S UTC'). Write it down, keep it offline: with it and a"
echo "channel.backup file, lnd's funds and channels can be recovered (see README, Lightning)."
jq -r '.cipher_seed_mnemonic | to_entries[] | "\(.key + 1). \(.value)"' "$seedfile"

jq -n --rawfile pw "$pwfile" --slurpfile gen "$seedfile" \
  '{wallet_password: ($pw | sub("[\r\n]+$"; "") | @base64), cipher_seed_mnemonic: $gen[0].cipher_seed_mnemonic}' >"$body"
call --header='Content-Type: application/json' --post-file="$body" "$rest/v1/initwallet" >/dev/null ||
  { echo "create-wallet: initwallet failed" >&2; exit 1; }
rm -f "$body" "$seedfile"

echo "create-wallet: wallet created for {{ node.network }}; stopping lnd" >&2
stop_lnd
trap - EXIT
