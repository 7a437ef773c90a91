#!/bin/sh
# Redis with the project's shared redis/redis.conf, its password from REDIS_PASSWORD written into
# a file of its own (never onto a command line, where the host's `ps` would show it); the
# arguments (the image's CMD) give this instance's address, port and dir.
set -eu
case "${REDIS_PASSWORD:-}" in
  "") echo "REDIS_PASSWORD is empty: set one in .env" >&2; exit 64 ;;
  *[\"\\\ ]*) echo "REDIS_PASSWORD must not hold quotes, backslashes or spaces" >&2; exit 64 ;;
esac
umask 077
printf 'requirepass "%s"\n' "$REDIS_PASSWORD" > /tmp/redis-auth.conf
exec redis-server /etc/redis/project.conf --include /tmp/redis-auth.conf "$@"
