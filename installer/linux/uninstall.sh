#!/bin/sh
# Removes what install.sh installed for the current user. The vault (your documents, vectors
# and conversations, encrypted) is NOT removed: its folder is printed at the end; delete it
# yourself if you mean to.
set -eu
PREFIX=${PREFIX:-$HOME/.local}
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
app=$PREFIX/lib/ragdesk

# Where the vault lives (platformdirs' user data folder, unless RAGDESK_HOME says otherwise).
vault_home=${RAGDESK_HOME:-$DATA/RagDesk}

# The symlink is removed only if it points into our installation.
link=$PREFIX/bin/ragdesk
if [ -L "$link" ] && [ "$(readlink "$link")" = "$app/ragdesk" ]; then
    rm -f "$link"
fi
rm -rf "$app" "$app.new" "$app.old"
rm -f "$DATA/applications/ragdesk.desktop" "$DATA/icons/hicolor/scalable/apps/ragdesk.svg"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$DATA/applications" || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$DATA/icons/hicolor" || true

echo "RagDesk is uninstalled."
if [ -e "$vault_home/vault.db" ]; then
    echo "Your vault was kept in $vault_home. Back it up (ragdesk backup) or delete it yourself."
fi
