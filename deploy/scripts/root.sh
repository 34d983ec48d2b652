# Sourced by the install scripts: sets $sudo to what runs a command as root
# ("" when already root), or exits naming what to install when nothing can:
# a script must never wait at a password prompt. Needs $missing (an array).
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1 || ! sudo -n true 2>/dev/null; then
		echo "this needs ${missing[*]}; install them (apt-get install ${missing[*]}) or run as a user with passwordless sudo" >&2
		exit 1
	fi
	sudo="sudo"
fi
