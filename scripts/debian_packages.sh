# Sourced by setup.sh and wheels.sh: `need_debian_packages WHO PKG...` installs, with
# apt-get, those of the Debian packages PKG... that are not installed yet (nothing when all are).
need_debian_packages() {
  local who=$1 pkg need=()
  shift
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  ((${#need[@]})) || return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "$who: installing Debian packages: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
}
