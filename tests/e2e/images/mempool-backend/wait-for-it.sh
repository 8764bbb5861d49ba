#!/bin/sh
# /backend/wait-for-it.sh, as upstream's compose calls it (`./wait-for-it.sh db:3306
# --timeout=720 --strict -- ./start.sh`): wait until HOST:PORT accepts a TCP connection, for up to
# --timeout seconds (15 by default, 0 = forever), then run the command; with --strict, not when it
# timed out (exit 124 as upstream's script returns). Written for this test bed.
hostport= timeout=15 strict= quiet=
while [ $# -gt 0 ]; do
  case $1 in
    *:*) [ -n "$hostport" ] || hostport=$1; shift ;;
    -t) timeout=$2; shift 2 ;;
    --timeout=*) timeout=${1#--timeout=}; shift ;;
    -s|--strict) strict=1; shift ;;
    -q|--quiet) quiet=1; shift ;;
    --) shift; break ;;
    *) echo "Unknown argument: $1" >&2; exit 1 ;;
  esac
done
host=${hostport%%:*} port=${hostport##*:}
say() { [ -n "$quiet" ] || echo "wait-for-it.sh: $*" >&2; }
[ "$timeout" -gt 0 ] && say "waiting $timeout seconds for $host:$port" || say "waiting for $host:$port without a timeout"
start=$(date +%s) result=124
while :; do
  if busybox nc -w 1 "$host" "$port" </dev/null >/dev/null 2>&1; then
    say "$host:$port is available after $(( $(date +%s) - start )) seconds"; result=0; break
  fi
  [ "$timeout" -gt 0 ] && [ $(( $(date +%s) - start )) -ge "$timeout" ] && { say "timeout occurred after waiting $timeout seconds for $host:$port"; break; }
  sleep 1
done
if [ $# -gt 0 ]; then
  if [ "$result" -ne 0 ] && [ -n "$strict" ]; then say "strict mode, refusing to execute subprocess"; exit "$result"; fi
  exec "$@"
fi
exit "$result"
