#!/usr/bin/env bash
# Sets up the database, its users and GTID replication from the primary to every replica.
#
# Safe to run any number of times: each step checks first and only changes what is missing,
# so a second run changes nothing (not even the primary's GTID position) and says so.
# The native launcher and docker-compose both run this very script.
#
# Environment (see .env.example):
#   MYSQL_PRIMARY_HOST, MYSQL_PRIMARY_PORT        where this script reaches the primary
#   MYSQL_PRIMARY_ADVERTISED_HOST/_PORT           where the replicas reach it (default: the same)
#   MYSQL_REPLICAS                                comma-separated host:port list of replicas
#   MYSQL_ADMIN_USER, MYSQL_ADMIN_PASSWORD        the admin account on every node (not root)
#   MYSQL_DATABASE, MYSQL_APP_USER, MYSQL_APP_PASSWORD
#   MYSQL_REPL_USER, MYSQL_REPL_PASSWORD
#   MYSQL_SEMI_SYNC, MYSQL_SEMI_SYNC_TIMEOUT_MS   semi-synchronous replication (on | off; ms)
#   MYSQL_TOPOLOGY_FILE                           the record of a failover (mysql/failover.sh)
#   APP_ENV                                       production refuses the development passwords
#
# The primary is the configured one until failover.sh records another in MYSQL_TOPOLOGY_FILE;
# from then on that record says which node takes writes: every other node starts read-only
# (start-node.sh, docker-entrypoint.sh), this script fences any that is not and opens the
# primary, and every other node replicates from it. A node whose GTID history holds transactions
# beyond the record's promotion point (a former primary that committed what no replica received)
# is refused: it stays read-only and out of replication, and the script says so.
set -euo pipefail

# The admin account every node has (root answers on a node's own socket only).
MYSQL_ADMIN_USER=${MYSQL_ADMIN_USER:-admin}

CHANGES=0

log() { printf '[replication] %s\n' "$*"; }
die() { printf '[replication] error: %s\n' "$*" >&2; exit 1; }

# sql_string VALUE: VALUE as a single-quoted SQL string literal.
sql_string() {
  local escaped=${1//\\/\\\\}
  printf "'%s'" "${escaped//\'/\'\'}"
}

# sql HOST PORT STATEMENT: runs STATEMENT as the admin account, prints tab-separated rows.
sql() {
  MYSQL_PWD="$MYSQL_ADMIN_PASSWORD" mariadb --no-defaults --protocol=TCP \
    -h "$1" -P "$2" -u "$MYSQL_ADMIN_USER" --batch --skip-column-names -e "$3"
}

wait_for_mysql() {
  local host=$1 port=$2 deadline=$((SECONDS + ${MYSQL_WAIT_SECONDS:-60}))
  until sql "$host" "$port" 'SELECT 1' >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "no answer from $host:$port"
    sleep 0.5
  done
}

user_exists() {
  local user=$1
  [[ $(sql "$MYSQL_PRIMARY_HOST" "$MYSQL_PRIMARY_PORT" \
    "SELECT COUNT(*) FROM mysql.user WHERE User=$(sql_string "$user") AND Host='%'") == 1 ]]
}

ensure_database() {
  local exists
  exists=$(sql "$MYSQL_PRIMARY_HOST" "$MYSQL_PRIMARY_PORT" \
    "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME=$(sql_string "$MYSQL_DATABASE")")
  if [[ $exists == 1 ]]; then
    log "database $MYSQL_DATABASE: unchanged"
    return
  fi
  sql "$MYSQL_PRIMARY_HOST" "$MYSQL_PRIMARY_PORT" \
    "CREATE DATABASE \`$MYSQL_DATABASE\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
  log "database $MYSQL_DATABASE: created"
  CHANGES=$((CHANGES + 1))
}

# The replication account can stream the binlog and nothing else.
ensure_replication_user() {
  if user_exists "$MYSQL_REPL_USER"; then
    log "replication user $MYSQL_REPL_USER: unchanged"
    return
  fi
  sql "$MYSQL_PRIMARY_HOST" "$MYSQL_PRIMARY_PORT" "
    CREATE USER $(sql_string "$MYSQL_REPL_USER")@'%' IDENTIFIED BY $(sql_string "$MYSQL_REPL_PASSWORD");
    GRANT REPLICATION SLAVE ON *.* TO $(sql_string "$MYSQL_REPL_USER")@'%';"
  log "replication user $MYSQL_REPL_USER: created (REPLICATION SLAVE only)"
  CHANGES=$((CHANGES + 1))
}

# The application account: DML and the DDL its migrations need, on its own schema only,
# plus SLAVE MONITOR so the API can read replica status for health and lag.
ensure_app_user() {
  if user_exists "$MYSQL_APP_USER"; then
    log "application user $MYSQL_APP_USER: unchanged"
    return
  fi
  local account
  account="$(sql_string "$MYSQL_APP_USER")@'%'"
  sql "$MYSQL_PRIMARY_HOST" "$MYSQL_PRIMARY_PORT" "
    CREATE USER $account IDENTIFIED BY $(sql_string "$MYSQL_APP_PASSWORD");
    GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP, REFERENCES
      ON \`$MYSQL_DATABASE\`.* TO $account;
    GRANT SLAVE MONITOR ON *.* TO $account;"
  log "application user $MYSQL_APP_USER: created (DML + DDL on $MYSQL_DATABASE only)"
  CHANGES=$((CHANGES + 1))
}

# replica_field HOST PORT FIELD: one field of SHOW REPLICA STATUS (empty when not a replica).
replica_field() {
  MYSQL_PWD="$MYSQL_ADMIN_PASSWORD" mariadb --no-defaults --protocol=TCP -h "$1" -P "$2" -u "$MYSQL_ADMIN_USER" \
    -e 'SHOW REPLICA STATUS\G' | awk -F': ' -v f="$3" '$1 ~ "^ *"f"$" {print $2}'
}

replica_is_attached() {
  local host=$1 port=$2
  [[ $(replica_field "$host" "$port" Master_Host) == "$PRIMARY_FOR_REPLICAS_HOST" &&
     $(replica_field "$host" "$port" Master_Port) == "$PRIMARY_FOR_REPLICAS_PORT" &&
     $(replica_field "$host" "$port" Master_User) == "$MYSQL_REPL_USER" &&
     $(replica_field "$host" "$port" Using_Gtid) == Slave_Pos ]]
}

replica_is_running() {
  [[ $(replica_field "$1" "$2" Slave_IO_Running) == Yes &&
     $(replica_field "$1" "$2" Slave_SQL_Running) == Yes ]]
}

ensure_replica_attached() {
  local host=$1 port=$2
  wait_for_mysql "$host" "$port"
  if replica_is_attached "$host" "$port"; then
    if replica_is_running "$host" "$port"; then
      log "replica $host:$port: unchanged (attached with GTID, threads running)"
      return
    fi
    sql "$host" "$port" 'START REPLICA'
    log "replica $host:$port: replication restarted"
  else
    # The node resumes from what it has applied, whether it replicated that (gtid_slave_pos) or
    # wrote it as a primary (gtid_binlog_pos): gtid_current_pos is the newest of both.
    sql "$host" "$port" "
      STOP REPLICA;
      SET GLOBAL gtid_slave_pos = @@gtid_current_pos;
      CHANGE MASTER TO
        MASTER_HOST=$(sql_string "$PRIMARY_FOR_REPLICAS_HOST"),
        MASTER_PORT=$PRIMARY_FOR_REPLICAS_PORT,
        MASTER_USER=$(sql_string "$MYSQL_REPL_USER"),
        MASTER_PASSWORD=$(sql_string "$MYSQL_REPL_PASSWORD"),
        MASTER_CONNECT_RETRY=1,
        MASTER_USE_GTID=slave_pos;
      START REPLICA;"
    log "replica $host:$port: attached to $PRIMARY_FOR_REPLICAS_HOST:$PRIMARY_FOR_REPLICAS_PORT with GTID"
  fi
  CHANGES=$((CHANGES + 1))
}

# ensure_semi_sync HOST PORT ROLE: semi-synchronous replication as MYSQL_SEMI_SYNC says, applied
# to the running server (its config file has the same values for its next start). Both sides are
# on on every node, so that a replica can be promoted; a replica whose side changed restarts its
# IO thread, which is when it takes effect.
ensure_semi_sync() {
  local host=$1 port=$2 role=$3 state=OFF timeout=${MYSQL_SEMI_SYNC_TIMEOUT_MS:-1000} current
  if [[ ${MYSQL_SEMI_SYNC:-on} == on ]]; then state=ON; fi
  current=$(sql "$host" "$port" "SELECT CONCAT_WS(' ', IF(@@rpl_semi_sync_master_enabled, 'ON', 'OFF'),
    IF(@@rpl_semi_sync_slave_enabled, 'ON', 'OFF'), @@rpl_semi_sync_master_timeout,
    @@rpl_semi_sync_master_wait_point)")
  if [[ $current == "$state $state $timeout AFTER_SYNC" ]]; then
    log "semi-sync $host:$port: unchanged ($state, timeout ${timeout} ms)"
    return
  fi
  sql "$host" "$port" "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC;
    SET GLOBAL rpl_semi_sync_master_timeout = $timeout;
    SET GLOBAL rpl_semi_sync_master_enabled = $state;
    SET GLOBAL rpl_semi_sync_slave_enabled = $state;"
  if [[ $role == replica && ${current#* } != "$state"* ]] && replica_is_running "$host" "$port"; then
    sql "$host" "$port" 'STOP REPLICA IO_THREAD; START REPLICA IO_THREAD'
  fi
  log "semi-sync $host:$port: $state, timeout ${timeout} ms (was: $current)"
  CHANGES=$((CHANGES + 1))
}

# member_list: every node, configured primary first (host:port, one per line).
member_list() {
  printf '%s:%s\n' "$MYSQL_PRIMARY_HOST" "$MYSQL_PRIMARY_PORT"
  local replica
  IFS=',' read -r -a replica_list <<<"${MYSQL_REPLICAS:-}"
  for replica in "${replica_list[@]}"; do
    [[ -z $replica ]] || printf '%s\n' "$replica"
  done
}

# topology_field NAME: a field of the failover record (empty when there is no record).
topology_field() {
  local file=${MYSQL_TOPOLOGY_FILE:-}
  [[ -n $file && -f $file ]] || return 0
  awk -F= -v k="$1" '$1 == k {print substr($0, length(k) + 2)}' "$file" | tail -n 1
}

# load_topology: PRIMARY (host:port, where this script reaches it), PRIMARY_FOR_REPLICAS_HOST/
# _PORT (where replicas reach it) and REPLICA_LIST (every other member), from the failover
# record when there is one, else from the configuration.
load_topology() {
  local members recorded
  members=$(member_list)
  recorded=$(topology_field PRIMARY)
  if [[ -n $recorded ]]; then
    grep -qxF "$recorded" <<<"$members" ||
      die "$MYSQL_TOPOLOGY_FILE names $recorded as primary, which is not among MYSQL_PRIMARY_HOST/MYSQL_REPLICAS"
    PRIMARY=$recorded
    PRIMARY_FOR_REPLICAS_HOST=${recorded%:*}
    PRIMARY_FOR_REPLICAS_PORT=${recorded##*:}
  else
    PRIMARY="$MYSQL_PRIMARY_HOST:$MYSQL_PRIMARY_PORT"
    PRIMARY_FOR_REPLICAS_HOST=${MYSQL_PRIMARY_ADVERTISED_HOST:-$MYSQL_PRIMARY_HOST}
    PRIMARY_FOR_REPLICAS_PORT=${MYSQL_PRIMARY_ADVERTISED_PORT:-$MYSQL_PRIMARY_PORT}
  fi
  REPLICA_LIST=$(grep -vxF "$PRIMARY" <<<"$members" || true)
}

# startup_read_only SELF ROLE: ON or OFF, how node SELF (host:port, as the record names nodes)
# starts. After a failover the record decides: only the primary it names starts writable, so a
# former primary that restarts (by its supervisor, or with `make up`) is fenced from its first
# moment. Without a record, the configured role decides: the primary starts writable, and comes
# back writable when it restarts.
startup_read_only() {
  local recorded
  recorded=$(topology_field PRIMARY)
  if [[ -n $recorded ]]; then
    [[ $recorded == "$1" ]] && printf OFF || printf ON
  else
    [[ $2 == primary ]] && printf OFF || printf ON
  fi
}

# startup_rpl_role READ_ONLY SEMI_SYNC: the role a node recovers in after a crash (MariaDB's
# init_rpl_role), from how it starts (READ_ONLY: ON | OFF) and its semi-sync replica side (ON |
# OFF). A node that starts read-only with semi-sync on recovers as a replica: a transaction its
# binlog holds but its engine had only prepared (a commit still waiting for a replica's ack when
# the node died, so never answered) is rolled back and cut from the binlog. Recovering as a
# primary would commit it, and a former primary would then hold a transaction that the new one
# may never have had (diverged: refused, rebuilt). With semi-sync off there is no such promise,
# and a prepared transaction may have been answered: it is kept (committed), as before.
startup_rpl_role() {
  if [[ $1 == ON && $2 == ON ]]; then printf SLAVE; else printf MASTER; fi
}

# keep_binlog_tail SELF DATADIR: before the former primary a failover recorded (PREVIOUS) first
# recovers as a replica, which cuts its binlog's in-doubt tail, a copy of its last binlog file
# beside DATADIR (DATADIR/../binlog-kept-epoch-N), once per failover. With semi-sync fallen back
# to asynchronous, that tail may hold writes that were answered and that no replica received:
# lost for the new topology either way, but an operator can still read them (mariadb-binlog).
keep_binlog_tail() {
  local self=$1 datadir=$2 kept last
  [[ $(topology_field PREVIOUS) == "$self" && $(topology_field PRIMARY) != "$self" ]] || return 0
  kept="$(dirname "$datadir")/binlog-kept-epoch-$(topology_field EPOCH)"
  [[ ! -e $kept && -f $datadir/mysql-bin.index ]] || return 0
  last=$(tail -n 1 "$datadir/mysql-bin.index")
  [[ -n $last && -f $datadir/${last#./} ]] || return 0
  mkdir -p "$kept" && cp -p "$datadir/${last#./}" "$kept/" &&
    log "kept a copy of $self's last binlog before it recovers as a replica: $kept"
}

# ensure_read_only HOST PORT ON|OFF: fence a node (ON) or open it for writes (OFF).
ensure_read_only() {
  local host=$1 port=$2 wanted=$3 current
  current=$(sql "$host" "$port" "SELECT IF(@@read_only, 'ON', 'OFF')")
  if [[ $current == "$wanted" ]]; then
    log "read_only $host:$port: unchanged ($wanted)"
    return
  fi
  sql "$host" "$port" "SET GLOBAL read_only = $wanted"
  log "read_only $host:$port: $wanted ($([[ $wanted == ON ]] && echo fenced || echo 'takes writes'))"
  CHANGES=$((CHANGES + 1))
}

# floor_seq POSITION DOMAIN: POSITION's sequence number in DOMAIN (0 when it has none).
floor_seq() {
  local gtid best=0
  IFS=',' read -r -a gtids <<<"$1"
  for gtid in "${gtids[@]}"; do
    if [[ ${gtid%%-*} == "$2" ]] && ((${gtid##*-} > best)); then best=${gtid##*-}; fi
  done
  printf '%s' "$best"
}

# foreign_gtids POSITION: the GTIDs of a node's POSITION that the primary does not have: beyond
# the point the primary was promoted at (PROMOTED_AT in the record), anything not written by the
# primary itself, or beyond what it has written. Within a domain, GTIDs are a single line of
# history (gtid_strict_mode), so a node's last GTID per domain stands for all before it.
foreign_gtids() {
  local promoted_at=$2 primary_id=$3 primary_pos=$4 gtid domain server seq
  IFS=',' read -r -a gtids <<<"$1"
  for gtid in "${gtids[@]}"; do
    [[ -n $gtid ]] || continue
    IFS=- read -r domain server seq <<<"$gtid"
    ((seq > $(floor_seq "$promoted_at" "$domain"))) || continue
    [[ $server == "$primary_id" ]] && ((seq <= $(floor_seq "$primary_pos" "$domain"))) && continue
    printf '%s ' "$gtid"
  done
}

# diverged HOST PORT: prints why the node cannot follow the recorded primary (nothing when it can).
diverged() {
  local promoted_at own extra primary_id primary_pos own_id missing
  promoted_at=$(topology_field PROMOTED_AT)
  [[ -n $promoted_at ]] || return 0
  own=$(sql "$1" "$2" 'SELECT @@gtid_current_pos')
  primary_id=$(sql "$MYSQL_PRIMARY_HOST" "$MYSQL_PRIMARY_PORT" 'SELECT @@server_id')
  primary_pos=$(sql "$MYSQL_PRIMARY_HOST" "$MYSQL_PRIMARY_PORT" 'SELECT @@gtid_binlog_pos')
  extra=$(foreign_gtids "$own" "$promoted_at" "$primary_id" "$primary_pos")
  if [[ -n $extra ]]; then
    printf 'its GTID history diverged: it has %s, which the primary %s (promoted at %s) never had' \
      "${extra% }" "$PRIMARY" "$promoted_at"
    return
  fi
  # A semi-sync replica in GTID strict mode (both on every node here) applies a transaction of its
  # own server_id that its binlog lacks (MariaDB's MDEV-21117 and MDEV-28609: a former primary that
  # recovered as a replica gets back the cut tail a replica had received). Without semi-sync it
  # skips it, as any replica skips its own server_id's events.
  [[ ${MYSQL_SEMI_SYNC:-on} == off ]] || return 0
  own_id=$(sql "$1" "$2" 'SELECT @@server_id')
  missing=$(own_gtids_missing "$own" "$promoted_at" "$own_id")
  [[ -z $missing ]] || printf 'it lacks %s, written by its own server_id %s, which replication skips: restore a copy of the primary first' \
    "${missing% }" "$own_id"
}

# own_gtids_missing POSITION PROMOTED_AT SERVER_ID: GTIDs of PROMOTED_AT that SERVER_ID wrote and a
# node at POSITION has not applied (a former primary whose data was lost or re-initialised). A
# replica skips events carrying its own server_id, so it could never receive them.
own_gtids_missing() {
  local gtid domain server seq
  IFS=',' read -r -a gtids <<<"$2"
  for gtid in "${gtids[@]}"; do
    [[ -n $gtid ]] || continue
    IFS=- read -r domain server seq <<<"$gtid"
    if [[ $server == "$3" ]] && ((seq > $(floor_seq "$1" "$domain"))); then printf '%s ' "$gtid"; fi
  done
}

check_required_settings() {
  local name
  for name in MYSQL_PRIMARY_HOST MYSQL_PRIMARY_PORT MYSQL_ADMIN_PASSWORD MYSQL_DATABASE \
              MYSQL_APP_USER MYSQL_APP_PASSWORD MYSQL_REPL_USER MYSQL_REPL_PASSWORD; do
    [[ -n ${!name:-} ]] || die "$name is not set"
  done
  [[ $MYSQL_DATABASE =~ ^[A-Za-z0-9_]+$ ]] || die "MYSQL_DATABASE must be letters, digits or _"
  [[ ${MYSQL_SEMI_SYNC:-on} == on || ${MYSQL_SEMI_SYNC:-on} == off ]] ||
    die "MYSQL_SEMI_SYNC must be on or off"
  [[ ${MYSQL_SEMI_SYNC_TIMEOUT_MS:-1000} =~ ^[0-9]+$ ]] || die "MYSQL_SEMI_SYNC_TIMEOUT_MS must be a number"
  if [[ ${APP_ENV:-development} == production ]]; then
    for name in MYSQL_ADMIN_PASSWORD MYSQL_APP_PASSWORD MYSQL_REPL_PASSWORD; do
      [[ ${!name} != dev-*-password && ${!name} != replace-me ]] ||
        die "$name is a development password; set a real one"
    done
  fi
}

main() {
  check_required_settings
  load_topology
  local member refused=()
  # Fence first: no node but the recorded primary may take writes, before that one is opened.
  while read -r member; do
    [[ -n $member ]] || continue
    wait_for_mysql "${member%:*}" "${member##*:}"
    ensure_read_only "${member%:*}" "${member##*:}" ON
  done <<<"$REPLICA_LIST"
  MYSQL_PRIMARY_HOST=${PRIMARY%:*} MYSQL_PRIMARY_PORT=${PRIMARY##*:}
  wait_for_mysql "$MYSQL_PRIMARY_HOST" "$MYSQL_PRIMARY_PORT"
  ensure_read_only "$MYSQL_PRIMARY_HOST" "$MYSQL_PRIMARY_PORT" OFF
  ensure_database
  ensure_replication_user
  ensure_app_user
  ensure_semi_sync "$MYSQL_PRIMARY_HOST" "$MYSQL_PRIMARY_PORT" primary
  local why
  while read -r member; do
    [[ -n $member ]] || continue
    if ! replica_is_attached "${member%:*}" "${member##*:}" &&
        why=$(diverged "${member%:*}" "${member##*:}") && [[ -n $why ]]; then
      printf '[replication] error: refused %s: %s. It stays read-only and out of replication; rebuild it from the primary (docs/replication.md, "A former primary that is refused").\n' \
        "$member" "$why" >&2
      refused+=("$member")
      continue
    fi
    ensure_replica_attached "${member%:*}" "${member##*:}"
    ensure_semi_sync "${member%:*}" "${member##*:}" replica
  done <<<"$REPLICA_LIST"
  if ((CHANGES == 0)); then
    log "already configured: nothing to do"
  else
    log "done: $CHANGES change(s)"
  fi
  ((${#refused[@]} == 0)) || log "refused: ${refused[*]} (see the error above)"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
