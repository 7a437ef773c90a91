#!/usr/bin/env bash
# Prints the replication state of every replica: threads, GTID positions, lag.
# Same environment as setup-replication.sh (read-only: it changes nothing).
set -euo pipefail
# shellcheck source=mysql/setup-replication.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup-replication.sh"

print_replica_row() {
  local name=$1 host=$2 port=$3 status io sql_thread behind slave_pos
  if ! status=$(MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mariadb --no-defaults --protocol=TCP \
      -h "$host" -P "$port" -u root -e 'SHOW REPLICA STATUS\G' 2>/dev/null); then
    printf '%-10s %-16s %-4s %-4s %-8s %s\n' "$name" "$host:$port" '-' '-' '-' 'unreachable'
    return
  fi
  io=$(awk -F': ' '$1 ~ /^ *Slave_IO_Running$/ {print $2}' <<<"$status")
  sql_thread=$(awk -F': ' '$1 ~ /^ *Slave_SQL_Running$/ {print $2}' <<<"$status")
  behind=$(awk -F': ' '$1 ~ /^ *Seconds_Behind_Master$/ {print $2}' <<<"$status")
  slave_pos=$(sql "$host" "$port" 'SELECT @@gtid_slave_pos')
  printf '%-10s %-16s %-4s %-4s %-8s %s\n' "$name" "$host:$port" "${io:-No}" "${sql_thread:-No}" \
    "${behind:-NULL}" "${slave_pos:-(empty)}"
}

main_status() {
  local primary_pos i=0 replica
  primary_pos=$(sql "$MYSQL_PRIMARY_HOST" "$MYSQL_PRIMARY_PORT" 'SELECT @@gtid_binlog_pos' 2>/dev/null) \
    || primary_pos='unreachable'
  printf 'primary    %-16s gtid_binlog_pos=%s\n\n' "$MYSQL_PRIMARY_HOST:$MYSQL_PRIMARY_PORT" "$primary_pos"
  printf '%-10s %-16s %-4s %-4s %-8s %s\n' replica address IO SQL lag_s gtid_slave_pos
  IFS=',' read -r -a replicas <<<"${MYSQL_REPLICAS:-}"
  for replica in "${replicas[@]}"; do
    i=$((i + 1))
    print_replica_row "replica-$i" "${replica%:*}" "${replica##*:}"
  done
}

main_status "$@"
