# Installing Debian packages the boards need, with clear messages.
# shellcheck shell=bash

APT_UPDATED=${APT_UPDATED:-}

apt_is_installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

apt_update_once() {
    [[ -n $APT_UPDATED ]] && return 0
    info "apt-get update"
    as_root apt-get update -qq || die "apt-get update failed; check the network and /etc/apt/sources.list"
    APT_UPDATED=1
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root to run: $* (run as root or install sudo)"
    fi
}

# `apt_require PKG...`: install every package that is missing. Fails with
# the package's name if Debian has no candidate for it.
apt_require() {
    local missing=() pkg
    for pkg in "$@"; do
        apt_is_installed "$pkg" || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    command -v apt-get >/dev/null || die "missing packages ${missing[*]}, and this is not a Debian system (no apt-get); install them by hand"
    apt_update_once
    for pkg in "${missing[@]}"; do
        if [[ "$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/{print $2}')" =~ ^(|\(none\))$ ]]; then
            die "Debian package '$pkg' cannot be had here (no installation candidate); the boards need Debian 12 (bookworm) with its main archive and bookworm-updates"
        fi
    done
    info "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]} failed (see the messages above)"
}
