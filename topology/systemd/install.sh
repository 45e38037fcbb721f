#!/usr/bin/env bash
# install.sh: what `make install` runs. Installs the built binary, the default topology, an example
# env file and the systemd unit, under DESTDIR (for packaging) when it is set.
#
#   install.sh BINARY DESTDIR PREFIX SYSCONFDIR UNITDIR
#
#   BINARY                      -> DESTDIR/PREFIX/bin/herald
#   topology/default.json       -> DESTDIR/SYSCONFDIR/herald/topology.json   (never overwritten)
#   topology/systemd/herald.env -> DESTDIR/SYSCONFDIR/herald/herald.env      (never overwritten; 0600)
#   topology/systemd/herald.service, with PREFIX and SYSCONFDIR filled in -> DESTDIR/UNITDIR/herald.service
#
# The topology and the env file are the operator's once installed: an existing one is kept, and
# the new default is left beside it as *.default to compare.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/../.." && pwd)

(($# == 5)) || { echo "usage: install.sh BINARY DESTDIR PREFIX SYSCONFDIR UNITDIR" >&2; exit 2; }
BINARY=$1 DESTDIR=$2 PREFIX=$3 SYSCONFDIR=$4 UNITDIR=$5

say() { echo "install: $*" >&2; }
die() { echo "install: error: $*" >&2; exit 1; }

[[ -x $BINARY ]] || die "no $BINARY: build it first (make build), or name one (make install HERALD=path)"
for dir in "$PREFIX" "$SYSCONFDIR" "$UNITDIR"; do
    [[ $dir == /* ]] || die "$dir is not an absolute path (PREFIX, SYSCONFDIR and UNITDIR must be)"
done
[[ -z $DESTDIR || $DESTDIR == /* ]] || DESTDIR="$PWD/$DESTDIR"

# keep_or_install MODE SOURCE TARGET: install SOURCE as TARGET unless TARGET exists.
keep_or_install() {
    local mode=$1 source=$2 target=$3
    if [[ -e $target ]]; then
        install -m "$mode" -- "$source" "$target.default"
        say "kept $target (the new default is $target.default)"
    else
        install -m "$mode" -- "$source" "$target"
        say "installed $target"
    fi
}

install -d -m 0755 -- "$DESTDIR$PREFIX/bin" "$DESTDIR$SYSCONFDIR/herald" "$DESTDIR$UNITDIR"
install -m 0755 -- "$BINARY" "$DESTDIR$PREFIX/bin/herald"
say "installed $DESTDIR$PREFIX/bin/herald ($("$BINARY" --version))"
keep_or_install 0644 "$REPO_ROOT/topology/default.json" "$DESTDIR$SYSCONFDIR/herald/topology.json"
# Passwords go in here: readable by root only (systemd reads it before dropping privileges).
keep_or_install 0600 "$SCRIPT_DIR/herald.env" "$DESTDIR$SYSCONFDIR/herald/herald.env"
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@SYSCONFDIR@|$SYSCONFDIR|g" -- "$SCRIPT_DIR/herald.service" \
    >"$DESTDIR$UNITDIR/herald.service.tmp"
chmod 0644 -- "$DESTDIR$UNITDIR/herald.service.tmp"
mv -- "$DESTDIR$UNITDIR/herald.service.tmp" "$DESTDIR$UNITDIR/herald.service"
say "installed $DESTDIR$UNITDIR/herald.service"

if [[ -z $DESTDIR ]]; then
    cat >&2 <<EOT
install: next: edit $SYSCONFDIR/herald/herald.env, then
  set -a; . $SYSCONFDIR/herald/herald.env; set +a; $PREFIX/bin/herald migrate
  systemctl daemon-reload && systemctl enable --now herald
  (docs/deployment.md, "systemd")
EOT
fi
