#!/bin/sh
# The `sitegate` command on every user's PATH, installed by `make install` as /usr/local/bin/sitegate.
# Members of the technicians' group run it as the daemon's own user through the sudoers rule make install adds
# (systemd/sitegate.sudoers): the data keeps its modes (database 0600, state directory 0700), and sudo tells the
# command who asked (SUDO_USER), which every change it signs names. Its group is @GROUP@: a file it writes where the
# technician asked (`export --out`, `paper print --out`: mode 0640) is theirs to read, and no other local user's.
command=@VENV@/bin/sitegate
# lgpio creates its notify pipe in $LG_WD, else in the current folder (a technician's home the daemon's user cannot
# write, or /tmp where it stays): the state directory. The sudoers rule keeps LG_WD.
export LG_WD=@STATEDIR@
if [ "$(id -un)" = @USER@ ]; then
    exec "$command" --config @CONFDIR@/sitegate.toml "$@"
fi
case " $(id -Gn) " in
    *" @GROUP@ "*) exec sudo -n -u @USER@ -g @GROUP@ "$command" --config @CONFDIR@/sitegate.toml "$@" ;;
esac
if [ "$(id -u)" = 0 ]; then
    exec runuser -u @USER@ -- "$command" --config @CONFDIR@/sitegate.toml "$@"
fi
echo "error: $(id -un) is not in the group @GROUP@, whose members run sitegate" >&2
echo "fix: an administrator runs 'sudo usermod -aG @GROUP@ $(id -un)'; then log in again" >&2
exit 2
