#!/usr/bin/env bash
# The steps of todod's container image that are not package installs, shared
# by contrib/Containerfile and tests/integration/test_packaging.py (which
# builds the same root file system with mmdebstrap):
#
#   contrib/image-build.sh build SRCDIR DESTDIR [BUILDDIR]
#       configure (every plugin the image carries, each required), make and
#       make install DESTDIR=DESTDIR, then drop what a running image does not
#       use (headers, pkg-config file, man pages, docs, the example config)
#       and add the image's own configuration as /etc/todod/todod.conf.
#   contrib/image-build.sh user ROOT
#       the unprivileged user the image runs as (uid and gid 10001, which
#       a pod's runAsUser can name) and its state_dir, in the root ROOT.
set -euo pipefail

uid=10001

case ${1:-} in
build)
	[ $# -ge 3 ] || { echo "usage: $0 build SRCDIR DESTDIR [BUILDDIR]" >&2; exit 64; }
	src=$(cd "$2" && pwd)
	mkdir -p "$3"
	dest=$(cd "$3" && pwd)
	build=${4:-$src/build/image}
	# A git checkout has no configure script yet; a release tarball has one.
	[ -x "$src/configure" ] || (cd "$src" && autoreconf -fi)
	mkdir -p "$build"
	cd "$build"
	"$src/configure" -q --prefix=/usr --sysconfdir=/etc --localstatedir=/var \
		--enable-mcp-tools=yes --enable-reminders=yes --enable-email=yes \
		--enable-recurrence=yes --enable-dapr-transport=yes --enable-kafka-direct=yes
	make -j"$(nproc)" -s
	make -s install DESTDIR="$dest"
	rm -rf "$dest/usr/include" "$dest/usr/lib/pkgconfig" "$dest/usr/share/man" \
		"$dest/usr/share/doc" "$dest/etc/todod.conf"
	install -D -m 0644 "$src/contrib/todod-image.conf" "$dest/etc/todod/todod.conf"
	;;
user)
	[ $# -eq 2 ] || { echo "usage: $0 user ROOT" >&2; exit 64; }
	root=$(cd "$2" && pwd)
	groupadd --root "$root" --gid "$uid" todod
	useradd --root "$root" --uid "$uid" --gid "$uid" --no-create-home \
		--home-dir /var/lib/todod --shell /usr/sbin/nologin todod
	install -d -m 0750 -o "$uid" -g "$uid" "$root/var/lib/todod"
	;;
*)
	echo "usage: $0 build SRCDIR DESTDIR [BUILDDIR] | user ROOT" >&2
	exit 64
	;;
esac
