#!/bin/sh
# The fake-upstream container's entrypoint: seed a bare repo team/app.git with a main
# branch, serve it with git daemon (fetch and push) on 9418, then run the recording
# servers (server.mjs) in the foreground.
set -eu
mkdir -p /var/log/fake /srv/git/team
: > /var/log/fake/events.jsonl
git init -q --bare -b main /srv/git/team/app.git
seed=$(mktemp -d)
git -C "$seed" init -q -b main
echo "fake upstream" > "$seed/README.md"
git -C "$seed" add README.md
git -C "$seed" -c user.name=upstream -c user.email=upstream@upstream.test commit -q -m "seed"
git -C "$seed" push -q /srv/git/team/app.git main
rm -rf "$seed"
git daemon --reuseaddr --export-all --enable=receive-pack --base-path=/srv/git --listen=0.0.0.0 --port=9418 \
  --log-destination=stderr /srv/git &
exec node /fake/server.mjs
