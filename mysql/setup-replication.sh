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
#   MYSQL_ROOT_PASSWORD                           admin account (root@'%') on every node
#   MYSQL_DATABASE, MYSQL_APP_USER, MYSQL_APP_PASSWORD
#   MYSQL_REPL_USER, MYSQL_REPL_PASSWORD
#   MYSQL_SEMI_SYNC, MYSQL_SEMI_SYNC_TIMEOUT_MS   semi-synchronous replication (on | off; ms)
#   APP_ENV                                       production refuses the development passwords
set -euo pipefail

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
  MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mariadb --no-defaults --protocol=TCP \
    -h "$1" -P "$2" -u root --batch --skip-column-names -e "$3"
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
  MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mariadb --no-defaults --protocol=TCP -h "$1" -P "$2" -u root \
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
    sql "$host" "$port" "
      STOP REPLICA;
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

check_required_settings() {
  local name
  for name in MYSQL_PRIMARY_HOST MYSQL_PRIMARY_PORT MYSQL_ROOT_PASSWORD MYSQL_DATABASE \
              MYSQL_APP_USER MYSQL_APP_PASSWORD MYSQL_REPL_USER MYSQL_REPL_PASSWORD; do
    [[ -n ${!name:-} ]] || die "$name is not set"
  done
  [[ $MYSQL_DATABASE =~ ^[A-Za-z0-9_]+$ ]] || die "MYSQL_DATABASE must be letters, digits or _"
  [[ ${MYSQL_SEMI_SYNC:-on} == on || ${MYSQL_SEMI_SYNC:-on} == off ]] ||
    die "MYSQL_SEMI_SYNC must be on or off"
  [[ ${MYSQL_SEMI_SYNC_TIMEOUT_MS:-1000} =~ ^[0-9]+$ ]] || die "MYSQL_SEMI_SYNC_TIMEOUT_MS must be a number"
  if [[ ${APP_ENV:-development} == production ]]; then
    for name in MYSQL_ROOT_PASSWORD MYSQL_APP_PASSWORD MYSQL_REPL_PASSWORD; do
      [[ ${!name} != dev-*-password && ${!name} != replace-me ]] ||
        die "$name is a development password; set a real one"
    done
  fi
}

main() {
  check_required_settings
  PRIMARY_FOR_REPLICAS_HOST=${MYSQL_PRIMARY_ADVERTISED_HOST:-$MYSQL_PRIMARY_HOST}
  PRIMARY_FOR_REPLICAS_PORT=${MYSQL_PRIMARY_ADVERTISED_PORT:-$MYSQL_PRIMARY_PORT}
  wait_for_mysql "$MYSQL_PRIMARY_HOST" "$MYSQL_PRIMARY_PORT"
  ensure_database
  ensure_replication_user
  ensure_app_user
  ensure_semi_sync "$MYSQL_PRIMARY_HOST" "$MYSQL_PRIMARY_PORT" primary
  local replica
  IFS=',' read -r -a replicas <<<"${MYSQL_REPLICAS:-}"
  for replica in "${replicas[@]}"; do
    [[ -n $replica ]] || continue
    ensure_replica_attached "${replica%:*}" "${replica##*:}"
    ensure_semi_sync "${replica%:*}" "${replica##*:}" replica
  done
  if ((CHANGES == 0)); then
    log "already configured: nothing to do"
  else
    log "done: $CHANGES change(s)"
  fi
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
