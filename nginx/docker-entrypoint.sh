#!/usr/bin/env bash
# Entrypoint of the project's nginx image: renders nginx/nginx.conf.template (the file the
# native launcher renders too) from the environment, runs nginx, and follows the API replicas.
#
# Upstreams: NGINX_UPSTREAM_SERVERS as given, or else the addresses NGINX_UPSTREAM_HOST resolves
# to (Docker's DNS answers a service name with each replica's address) on NGINX_UPSTREAM_PORT.
# nginx resolves names only when it loads its config, so a replica that comes back with a new
# address, or `docker compose up --scale api=N`, would go unseen. Every NGINX_UPSTREAM_CHECK_S
# seconds the name is resolved again: a new address joins once it answers GET /healthz (a gate
# like a readiness probe: no request waits on a replica still booting), and an address leaves
# once DNS has not returned it for NGINX_UPSTREAM_FORGET_S seconds. A replica that restarts on
# its old address (Docker's usual case) thus costs no reload: nginx's own passive checks
# (max_fails, proxy_next_upstream) cover the seconds it is down. Each change is a graceful
# reload; an empty set never replaces the last one. SIGTERM/SIGQUIT stop nginx gracefully
# (QUIT: in-flight requests finish).
set -euo pipefail

TEMPLATE=/etc/nginx/project/nginx.conf.template
CONFIG=/run/nginx/nginx.conf

log() { printf '[nginx-entrypoint] %s\n' "$*" >&2; }
die() { printf '[nginx-entrypoint] error: %s\n' "$*" >&2; exit 1; }

declare -A LAST_SEEN=()  # address -> SECONDS when DNS last returned it
UPSTREAMS=()              # the addresses in nginx's config, sorted

resolve() {
  getent ahostsv4 "$NGINX_UPSTREAM_HOST" | awk '{print $1}' | sort -u -V
}

answers_health() {
  curl -fsS -m "${NGINX_UPSTREAM_CHECK_TIMEOUT_S:-1}" -o /dev/null \
    "http://$1:${NGINX_UPSTREAM_PORT:-8000}/healthz" 2>/dev/null
}

# Remember when DNS last returned each address; forget those it has not for FORGET_S seconds.
refresh_seen() {
  local address
  while read -r address; do
    LAST_SEEN[$address]=$SECONDS
  done < <(resolve)
  for address in "${!LAST_SEEN[@]}"; do
    if ((SECONDS - LAST_SEEN[$address] > ${NGINX_UPSTREAM_FORGET_S:-10})); then
      unset "LAST_SEEN[$address]"
    fi
  done
}

# The next upstream set: the remembered addresses already in use, plus the new ones that are ready.
next_upstreams() {
  local address
  for address in "${!LAST_SEEN[@]}"; do
    if [[ " ${UPSTREAMS[*]} " == *" $address "* ]] || answers_health "$address"; then
      printf '%s\n' "$address"
    fi
  done | sort -V
}

server_lines() {
  local address
  for address in "$@"; do
    printf '        server %s:%s max_fails=1 fail_timeout=2s;\n' "$address" "${NGINX_UPSTREAM_PORT:-8000}"
  done
}

# nginx sends a keyed write to another replica once it had no answer within
# NGINX_ANSWER_TIMEOUT_S: only safe if the API answers every write sooner (DB_WRITE_DEADLINE_S,
# the API's own; docs/reliability.md). The native launcher refuses the same (stack/nginx.py).
check_answer_timeout() {
  local write=${DB_WRITE_DEADLINE_S:-2.5} answer=${NGINX_ANSWER_TIMEOUT_S:?NGINX_ANSWER_TIMEOUT_S is not set}
  awk -v write="$write" -v answer="$answer" 'BEGIN { exit !(write + 0 < answer + 0) }' ||
    die "DB_WRITE_DEADLINE_S ($write) must be below NGINX_ANSWER_TIMEOUT_S ($answer)"
}

# Fill every ${NAME} of the template; a name with no value stops the start (no silent blank).
render() {
  local names name
  # shellcheck disable=SC2016 # a literal ${ in the pattern
  mapfile -t names < <(grep -o '\${[A-Z0-9_]*}' "$TEMPLATE" | sort -u | tr -d '${}')
  for name in "${names[@]}"; do
    [[ -n ${!name+set} ]] || die "$name is not set (used by $TEMPLATE)"
  done
  export NGINX_UPSTREAM_SERVERS
  # shellcheck disable=SC2016 # the list names the variables envsubst may replace, unexpanded
  envsubst "$(printf '${%s} ' "${names[@]}")" <"$TEMPLATE" >"$CONFIG.new"
  mv "$CONFIG.new" "$CONFIG"
}

wait_for_upstreams() {
  local deadline=$((SECONDS + 60))
  until refresh_seen && mapfile -t UPSTREAMS < <(next_upstreams) && ((${#UPSTREAMS[@]} > 0)); do
    ((SECONDS < deadline)) || die "no address of $NGINX_UPSTREAM_HOST answers /healthz"
    sleep 0.5
  done
  NGINX_UPSTREAM_SERVERS=$(server_lines "${UPSTREAMS[@]}")
}

follow_upstreams() {
  local next
  while kill -0 "$NGINX_PID" 2>/dev/null; do
    sleep "${NGINX_UPSTREAM_CHECK_S:-1}" &
    wait $! || true
    refresh_seen
    mapfile -t next < <(next_upstreams)
    if ((${#next[@]} > 0)) && [[ ${next[*]} != "${UPSTREAMS[*]}" ]]; then
      UPSTREAMS=("${next[@]}")
      NGINX_UPSTREAM_SERVERS=$(server_lines "${UPSTREAMS[@]}")
      render
      log "upstreams changed: ${UPSTREAMS[*]} - reloading"
      nginx -c "$CONFIG" -e /dev/stderr -s reload || log "reload failed; keeping the old config"
    fi
  done
}

main() {
  local follow=false
  check_answer_timeout
  if [[ -z ${NGINX_UPSTREAM_SERVERS:-} ]]; then
    [[ -n ${NGINX_UPSTREAM_HOST:-} ]] || die "set NGINX_UPSTREAM_SERVERS or NGINX_UPSTREAM_HOST"
    wait_for_upstreams
    follow=true
  fi
  render
  nginx -c "$CONFIG" -e /dev/stderr -t -q
  nginx -c "$CONFIG" -e /dev/stderr -g 'daemon off;' &
  NGINX_PID=$!
  trap 'kill -QUIT "$NGINX_PID" 2>/dev/null || true' TERM QUIT INT
  if [[ $follow == true ]]; then follow_upstreams; fi
  # wait returns early when a signal arrives; keep waiting until nginx has drained and exited.
  while kill -0 "$NGINX_PID" 2>/dev/null; do wait "$NGINX_PID" || true; done
}

main "$@"
