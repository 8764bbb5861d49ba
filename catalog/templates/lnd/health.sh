# Rendered by archy-hook render for {{ app.id }}: edit the template, not this file.
#
# lnd's health check: exit 0 when lnd serves (SERVER_ACTIVE). The last line says what lnd is
# doing, in the terms `archy-hook status` shows: no wallet yet, locked, waiting for bitcoind to
# sync, syncing its graph, serving. `state` needs no macaroon; `getinfo` reads one.
net={{ node.network }}
s=$(lncli --network="$net" state 2>&1) || { echo "lnd does not answer: $(printf %s "$s" | tr -d '\n' | cut -c1-160)"; exit 1; }
state=$(printf %s "$s" | jq -r .state 2>/dev/null)
info() { lncli --network="$net" getinfo 2>/dev/null; }
case $state in
  SERVER_ACTIVE) ;;
  NON_EXISTING) echo "no wallet yet (NON_EXISTING): archy-hook init creates it before lnd starts"; exit 1 ;;
  LOCKED) echo "locked (LOCKED): the wallet waits for its password"; exit 1 ;;
  UNLOCKED | WAITING_TO_START) echo "starting: the wallet is unlocked, lnd's RPC server is not up yet ($state)"; exit 1 ;;
  RPC_ACTIVE)
    h=$(info | jq -r .block_height)
    echo "waiting for bitcoind to sync: lnd is at block ${h:-?} and waits for a tip less than 2 hours old (RPC_ACTIVE)"
    exit 1 ;;
  *) echo "lnd: unexpected state '$state'"; exit 1 ;;
esac
i=$(info) || { echo "serving (SERVER_ACTIVE); getinfo failed"; exit 0; }
if [ "$(printf %s "$i" | jq -r .synced_to_graph)" = true ]; then
  echo "serving: $(printf %s "$i" | jq -r .num_active_channels) active channel(s), block $(printf %s "$i" | jq -r .block_height)"
else
  echo "serving; syncing its graph (SERVER_ACTIVE)"
fi
