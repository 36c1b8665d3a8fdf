#!/bin/sh
# The image's own ENTRYPOINT: it runs before whatever command a step gives (here, to prove it ran).
export TEAM_ENTRYPOINT=ran
exec "$@"
