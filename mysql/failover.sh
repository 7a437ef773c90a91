#!/usr/bin/env bash
# Promotes a replica to primary, GTID-exact, and repoints every other node to it.
#
#   failover.sh failover     the primary is lost (it does not answer): promote the replica that
#                            received the most, once it has applied all it received
#   failover.sh switchover   a planned change with the primary alive: fence it (read-only), let
#                            the target apply its last transaction, promote the target, and make
#                            the old primary a replica of it
#
# The outcome is recorded in MYSQL_TOPOLOGY_FILE (the primary, the GTID position it was promoted
# at, the one before it), which setup-replication.sh follows on every later run (`make up`,
# `docker compose up`): the former primary, when it returns, starts read-only like every node
# and rejoins as a replica of the new one, or is refused when it holds transactions the new
# primary never received. The API finds the new primary by itself (the one node that is not
# read-only; docs/replication.md).
#
# Idempotent: a failover with a primary that answers and takes writes does nothing and says so.
# Each step prints how long it took.
#
# Environment: that of setup-replication.sh, plus
#   MYSQL_TOPOLOGY_FILE             where the record is kept (required)
#   MYSQL_SWITCHOVER_TO             host:port of the replica a switchover promotes (default: the
#                                   one that has applied the most)
#   MYSQL_FAILOVER_APPLY_TIMEOUT_S  how long the new primary may take to apply what it received
set -euo pipefail

# The admin account every node has (root answers on a node's own socket only).
MYSQL_ADMIN_USER=${MYSQL_ADMIN_USER:-admin}
# shellcheck source=mysql/setup-replication.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup-replication.sh"

APPLY_TIMEOUT_S=${MYSQL_FAILOVER_APPLY_TIMEOUT_S:-30}
STEP_STARTED=0
TOTAL_STARTED=0

now_ms() { printf '%s' $(($(date +%s%N) / 1000000)); }

# step TEXT: ends the previous step (printing its duration) and starts the next.
step_done() {
  local now
  now=$(now_ms)
  log "$1 ($((now - STEP_STARTED)) ms)"
  STEP_STARTED=$now
}

answers() {
  MYSQL_PWD="$MYSQL_ADMIN_PASSWORD" mariadb --no-defaults --protocol=TCP --connect-timeout=3 \
    -h "${1%:*}" -P "${1##*:}" -u "$MYSQL_ADMIN_USER" --batch --skip-column-names -e 'SELECT 1' >/dev/null 2>&1
}

at() { sql "${1%:*}" "${1##*:}" "$2"; }

# gtid_total POSITION: the sum of its sequence numbers, to rank positions of one primary's stream.
gtid_total() {
  local gtid total=0
  IFS=',' read -r -a gtids <<<"$1"
  for gtid in "${gtids[@]}"; do
    [[ -z $gtid ]] || total=$((total + ${gtid##*-}))
  done
  printf '%s' "$total"
}

# most_advanced FIELD: of the replicas that answer, the one whose FIELD is furthest (Gtid_IO_Pos:
# received; gtid_slave_pos: applied). Prints "host:port position".
most_advanced() {
  local member position best='' best_total=-1 total
  while read -r member; do
    if [[ -z $member ]] || ! answers "$member"; then continue; fi
    if [[ $1 == received ]]; then
      position=$(replica_field "${member%:*}" "${member##*:}" Gtid_IO_Pos)
      [[ -n $position ]] || position=$(at "$member" 'SELECT @@gtid_slave_pos')
    else
      position=$(at "$member" 'SELECT @@gtid_slave_pos')
    fi
    total=$(gtid_total "$position")
    if ((total > best_total)); then best="$member $position" best_total=$total; fi
  done <<<"$REPLICA_LIST"
  printf '%s' "$best"
}

# wait_applied MEMBER POSITION: MEMBER's SQL thread has applied POSITION (within the timeout).
wait_applied() {
  [[ -z $2 ]] && return 0
  [[ $(at "$1" "SELECT MASTER_GTID_WAIT($(sql_string "$2"), $APPLY_TIMEOUT_S)") == 0 ]]
}

write_record() {
  local new=$1 previous=$2 promoted_at=$3 mode=$4 epoch tmp
  epoch=$(topology_field EPOCH)
  epoch=$((${epoch:-0} + 1))
  tmp="$MYSQL_TOPOLOGY_FILE.tmp"
  {
    printf '# Written by mysql/failover.sh; read by setup-replication.sh. Do not edit by hand.\n'
    printf 'PRIMARY=%s\nPROMOTED_AT=%s\nPREVIOUS=%s\nEPOCH=%s\nCHANGE=%s\nAT=%s\n' \
      "$new" "$promoted_at" "$previous" "$epoch" "$mode" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  } >"$tmp"
  mv "$tmp" "$MYSQL_TOPOLOGY_FILE"
}

# record_epoch NEW: the record's epoch written on NEW before it opens for writes (the admin account
# writes through read_only), so every node that follows NEW holds it, and a former primary that
# wakes up writable holds an older one: the writers follow the higher (app/db/topology.py).
record_epoch() {
  local exists
  exists=$(at "$1" "SELECT COUNT(*) FROM information_schema.TABLES
    WHERE TABLE_SCHEMA = $(sql_string "$MYSQL_DATABASE") AND TABLE_NAME = 'primary_epoch'")
  if [[ $exists != 1 ]]; then
    log "no primary_epoch table (migrations not run yet): the epoch is in $MYSQL_TOPOLOGY_FILE only"
    return 0
  fi
  at "$1" "REPLACE INTO \`$MYSQL_DATABASE\`.primary_epoch (id, epoch, member, changed_at)
    VALUES (1, $(topology_field EPOCH), $(sql_string "$1"), UTC_TIMESTAMP(6))"
}

# wait_semi_sync_client MEMBER: with semi-sync on, a replica has connected as a semi-sync client
# before writes open, so the first commits do not wait out the timeout and fall back.
wait_semi_sync_client() {
  [[ ${MYSQL_SEMI_SYNC:-on} == on ]] || return 0
  local deadline=$((SECONDS + 5)) clients
  while clients=$(at "$1" "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
      WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_CLIENTS'") && ((${clients:-0} < 1)); do
    ((SECONDS < deadline)) || { log "no semi-sync replica connected yet: writes open anyway"; return 0; }
    sleep 0.1
  done
}

# promote NEW PREVIOUS MODE: NEW becomes the primary; every other node that answers replicates
# from it; then NEW opens for writes.
promote() {
  local new=$1 previous=$2 mode=$3 promoted_at member attached=0
  at "$new" 'STOP REPLICA; RESET REPLICA ALL'
  promoted_at=$(at "$new" 'SELECT @@gtid_current_pos')
  write_record "$new" "$previous" "$promoted_at" "$mode"
  record_epoch "$new"
  step_done "promoted $new at GTID $promoted_at (recorded in $MYSQL_TOPOLOGY_FILE)"
  load_topology
  while read -r member; do
    [[ -n $member ]] || continue
    if ! answers "$member"; then
      log "$member does not answer: it rejoins when it returns (make up)"
      continue
    fi
    ensure_read_only "${member%:*}" "${member##*:}" ON
    ensure_replica_attached "${member%:*}" "${member##*:}"
    ensure_semi_sync "${member%:*}" "${member##*:}" replica
    attached=$((attached + 1))
  done <<<"$REPLICA_LIST"
  step_done "$attached other node(s) replicate from $new"
  ensure_semi_sync "${new%:*}" "${new##*:}" primary
  if ((attached > 0)); then wait_semi_sync_client "$new"; fi
  ensure_read_only "${new%:*}" "${new##*:}" OFF
  step_done "$new takes writes"
}

failover() {
  if answers "$PRIMARY"; then
    if [[ $(at "$PRIMARY" 'SELECT @@read_only') == 0 ]]; then
      log "the primary $PRIMARY answers and takes writes: nothing to fail over (planned change: make switchover)"
      return
    fi
    die "the primary $PRIMARY answers but is read-only: finish with setup-replication.sh (make up), or use switchover"
  fi
  step_done "the primary $PRIMARY does not answer"
  local best candidate received
  best=$(most_advanced received)
  [[ -n $best ]] || die "no replica answers: nothing to promote"
  candidate=${best%% *} received=${best#* }
  step_done "most advanced replica: $candidate (received $received)"
  at "$candidate" 'STOP REPLICA IO_THREAD'
  wait_applied "$candidate" "$received" ||
    die "$candidate did not apply $received within ${APPLY_TIMEOUT_S}s (MYSQL_FAILOVER_APPLY_TIMEOUT_S); nothing changed, run again"
  step_done "$candidate applied all it received"
  promote "$candidate" "$PRIMARY" failover
}

switchover() {
  answers "$PRIMARY" || die "the primary $PRIMARY does not answer: use failover"
  local target=${MYSQL_SWITCHOVER_TO:-} final
  if [[ -z $target ]]; then
    target=$(most_advanced applied)
    target=${target%% *}
  fi
  [[ -n $target ]] || die "no replica answers: nothing to switch to"
  if [[ $target == "$PRIMARY" ]]; then
    log "$target is already the primary: nothing to do"
    return
  fi
  grep -qxF "$target" <<<"$REPLICA_LIST" || die "$target is not a replica of this topology"
  answers "$target" || die "$target does not answer"
  ensure_read_only "${PRIMARY%:*}" "${PRIMARY##*:}" ON
  final=$(at "$PRIMARY" 'SELECT @@gtid_binlog_pos')
  step_done "fenced $PRIMARY (read-only) at GTID $final"
  if ! wait_applied "$target" "$final"; then
    ensure_read_only "${PRIMARY%:*}" "${PRIMARY##*:}" OFF
    die "$target did not apply $final within ${APPLY_TIMEOUT_S}s; $PRIMARY takes writes again, nothing changed"
  fi
  step_done "$target applied $final"
  promote "$target" "$PRIMARY" switchover
}

main_failover() {
  local mode=${1:-}
  [[ $mode == failover || $mode == switchover ]] || die "usage: failover.sh failover|switchover"
  check_required_settings
  [[ -n ${MYSQL_TOPOLOGY_FILE:-} ]] || die "MYSQL_TOPOLOGY_FILE is not set"
  exec 9>"$MYSQL_TOPOLOGY_FILE.lock"
  flock -w 60 9 || die "another failover or switchover holds $MYSQL_TOPOLOGY_FILE.lock"
  load_topology
  TOTAL_STARTED=$(now_ms) STEP_STARTED=$TOTAL_STARTED
  "$mode"
  log "$mode: done in $(($(now_ms) - TOTAL_STARTED)) ms; primary: $PRIMARY"
}

main_failover "$@"
