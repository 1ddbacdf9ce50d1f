#!/bin/sh
# Builds todod and runs it in its default configuration: no database is
# configured, so todod creates a private PostgreSQL cluster under its
# state directory, creates a first user and prints that user's API token
# and the MCP URL.  Stop it with Ctrl-C.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
contrib/install-deps.sh
[ -x configure ] || autoreconf -fi
mkdir -p build/run
cd build/run
[ -f Makefile ] || "$top/configure" -q
make -j"$(nproc)" -s
# The shipped configuration, with the plugins of this build gathered in
# one directory.  root keeps the compiled-in state directory; anyone else
# gets one at home.
mkdir -p plugins-run
for so in plugins/*/.libs/*.so; do ln -sf "$(pwd)/$so" plugins-run/; done
conf=$(pwd)/todod.conf
sed -e "s|^\[core\]|[core]\nplugin_dir = $(pwd)/plugins-run|" etc/todod.conf > "$conf"
if [ "$(id -u)" -ne 0 ]; then
	state=${XDG_STATE_HOME:-$HOME/.local/state}/todod
	sed -i -e "s|^# state_dir = .*|state_dir = $state|" \
	       -e "s|^server = mbox:.*|server = mbox:$state/reminders.mbox|" "$conf"
fi
exec ./todod -c "$conf"
