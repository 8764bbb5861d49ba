#!/usr/bin/env bash
# Runs archy's end-to-end scenarios, each in its own fresh sandbox (see sandbox.sh).
#
#   ARCHY_STAGE=DIR tests/e2e/run.sh [SCENARIO...]
#
# ARCHY_STAGE: a tree made by `make install DESTDIR=DIR PREFIX=/usr` (this script builds
# nothing). SCENARIO: names or paths of tests/e2e/scenarios/*.sh|*.bats (default: all).
# Prints first the bed's suite and the versions of podman, crun, netavark and systemd in its root,
# then each scenario's result, wall time and reported lines ("# ..."), then "N passed, N failed,
# N skipped"; exits 1 if any failed. A scenario that exits 77 skipped itself, saying why on a line
# "SKIP: ..." (a VM scenario where no accelerator can run it in time). A scenario with a line
# "# archy-e2e-host: ..." runs on the host, not in a sandbox.
#   ARCHY_E2E_SUITE    the bed's Debian suite: trixie (default) or sid (see sandbox.sh)
#   ARCHY_E2E_TIMEOUT  seconds per scenario (default 900)
#   ARCHY_E2E_VERBOSE  if set, stream each scenario's output instead of showing it on failure
#   ARCHY_E2E_LOGS     where the logs go (default: a new dir under /var/tmp)
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

[ -n "${ARCHY_STAGE:-}" ] && [ -d "$ARCHY_STAGE" ] || {
  echo "run.sh: ARCHY_STAGE must name a DESTDIR tree (make install DESTDIR=DIR PREFIX=/usr)" >&2; exit 2; }
ls "$ARCHY_STAGE"/usr/lib/systemd/user-generators/* >/dev/null 2>&1 ||
  echo "run.sh: warning: no user generator under $ARCHY_STAGE/usr/lib/systemd/user-generators" >&2
export ARCHY_STAGE

scenarios=()
if [ $# -gt 0 ]; then
  for s in "$@"; do
    if [ -f "$s" ]; then scenarios+=("$s")
    else
      m=("$HERE/scenarios/$s" "$HERE/scenarios/$s".sh "$HERE/scenarios/$s".bats)
      found=; for c in "${m[@]}"; do [ -f "$c" ] && { scenarios+=("$c"); found=1; break; }; done
      [ -n "$found" ] || { echo "run.sh: no scenario $s" >&2; exit 2; }
    fi
  done
else
  shopt -s nullglob
  scenarios=("$HERE"/scenarios/*.sh "$HERE"/scenarios/*.bats)
  shopt -u nullglob
  mapfile -t scenarios < <(printf '%s\n' "${scenarios[@]}" | sort)
  [ ${#scenarios[@]} -gt 0 ] && [ -n "${scenarios[0]}" ] || { echo "run.sh: no scenarios in $HERE/scenarios" >&2; exit 2; }
fi

t0=$(now)
"$HERE/sandbox.sh" build || { echo "run.sh: could not build the sandbox root" >&2; exit 1; }
# what this run tests archy against: the root's (ARCHY_E2E_SUITE's) own tools
versions=$("$HERE/sandbox.sh" versions) || { echo "run.sh: could not read the root's versions" >&2; exit 1; }
echo "suite $versions"
logs=${ARCHY_E2E_LOGS:-$(mktemp -d /var/tmp/archy-e2e-logs.XXXXXX)}
mkdir -p "$logs"
export ARCHY_E2E_JOURNAL=${ARCHY_E2E_JOURNAL:-$logs}   # a failing scenario's whole journal
passed=0 failed=0 skipped=0 failures=()
for s in "${scenarios[@]}"; do
  name=$(basename "$s"); log=$logs/${name%.*}.log; ts=$(now); rc=0
  # a scenario marked "# archy-e2e-host: ..." runs on the host (it brings its own machine: a VM)
  runner=("$HERE/sandbox.sh" run "$s")
  if grep -q '^# archy-e2e-host:' "$s"; then runner=(bash "$s"); fi
  if [ -n "${ARCHY_E2E_VERBOSE:-}" ]; then
    timeout -k 30 "${ARCHY_E2E_TIMEOUT:-900}" "${runner[@]}" 2>&1 | tee "$log"; rc=${PIPESTATUS[0]}
  else
    timeout -k 30 "${ARCHY_E2E_TIMEOUT:-900}" "${runner[@]}" >"$log" 2>&1 </dev/null || rc=$?
  fi
  if [ "$rc" = 77 ]; then
    # skipped by its own decision (what it needs is not here), with the reason: never a pass
    skipped=$((skipped + 1))
    printf 'SKIP  %-44s %7s\n' "$name" "$(since "$ts")"
    grep '^SKIP: ' "$log" | tail -n 1 | cut -c7- | fold -s -w 150 | sed 's/^/      /'
  elif [ "$rc" = 0 ]; then
    passed=$((passed + 1)); printf 'PASS  %-44s %7s\n' "$name" "$(since "$ts")"
    # what the scenario reported (bats: its "# ..." lines, timings among them)
    [ -n "${ARCHY_E2E_VERBOSE:-}" ] || grep '^# ' "$log" | cut -c1-160 | sed 's/^/      /'
  else
    failed=$((failed + 1)); failures+=("$name")
    [ "$rc" = 124 ] && why=" (timed out)" || why=" (exit $rc)"
    printf 'FAIL  %-44s %7s%s\n' "$name" "$(since "$ts")" "$why"
    # the script's own output (the journal that follows is in the log)
    [ -n "${ARCHY_E2E_VERBOSE:-}" ] || sed -n '/^\[sandbox\] ---- journal/q; p' "$log" | tail -n 60 | sed 's/^/      | /'
  fi
done
echo "logs: $logs"
echo "$passed passed, $failed failed, $skipped skipped in $(since "$t0")${failures:+ (failed: ${failures[*]})}"
[ "$failed" = 0 ]
