#!/bin/sh
# The stand-in's docker-entrypoint.sh: what redis:7's does for redis-server
# (its files private to the redis user), then the command.
umask 0077
exec "$@"
