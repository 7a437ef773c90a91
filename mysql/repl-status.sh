#!/usr/bin/env bash
# Prints the replication state of every replica: threads, GTID positions, lag.
# Same environment as setup-replication.sh (read-only: it changes nothing).
set -euo pipefail

# The admin account every node has (root answers on a node's own socket only).
MYSQL_ADMIN_USER=${MYSQL_ADMIN_USER:-admin}
# shellcheck source=mysql/setup-replication.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup-replication.sh"

print_replica_row() {
  local name=$1 host=$2 port=$3 status io sql_thread behind slave_pos
  if ! status=$(MYSQL_PWD="$MYSQL_ADMIN_PASSWORD" mariadb --no-defaults --protocol=TCP \
      -h "$host" -P "$port" -u "$MYSQL_ADMIN_USER" -e 'SHOW REPLICA STATUS\G' 2>/dev/null); then
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
  local primary_pos i=0 member name read_only
  load_topology
  primary_pos=$(sql "${PRIMARY%:*}" "${PRIMARY##*:}" 'SELECT @@gtid_binlog_pos' 2>/dev/null) \
    || primary_pos='unreachable'
  read_only=$(sql "${PRIMARY%:*}" "${PRIMARY##*:}" 'SELECT IF(@@read_only, "ON", "OFF")' 2>/dev/null) \
    || read_only='?'
  printf 'primary    %-16s gtid_binlog_pos=%s read_only=%s\n' "$PRIMARY" "$primary_pos" "$read_only"
  if [[ -n $(topology_field PRIMARY) ]]; then
    printf 'topology   %s by %s at %s (GTID %s; before: %s)\n' "$(topology_field CHANGE)" \
      "mysql/failover.sh" "$(topology_field AT)" "$(topology_field PROMOTED_AT)" "$(topology_field PREVIOUS)"
  fi
  printf '\n%-10s %-16s %-4s %-4s %-8s %s\n' replica address IO SQL lag_s gtid_slave_pos
  # Members are named as the API names them: replica-N is the N-th of MYSQL_REPLICAS, replica-0
  # the configured primary while it serves as a replica after a failover.
  while read -r member; do
    name=replica-$i
    i=$((i + 1))
    [[ $member != "$PRIMARY" ]] || continue
    print_replica_row "$name" "${member%:*}" "${member##*:}"
  done < <(member_list)
}

main_status "$@"
