#!/bin/sh
# Installs the RagDesk bundle for the current user only: no root, nothing outside $HOME.
#
#   installer/linux/install.sh [BUNDLE_DIR]      (default: dist/ragdesk, or ./ragdesk beside
#                                                 this script in a release archive)
#
# Where things go (XDG base directories; override with PREFIX / XDG_DATA_HOME):
#   $PREFIX/lib/ragdesk/                 the bundle (PREFIX defaults to ~/.local)
#   $PREFIX/bin/ragdesk                  a symlink to its executable (the CLI and the app)
#   $XDG_DATA_HOME/applications/ragdesk.desktop        the menu entry
#   $XDG_DATA_HOME/icons/hicolor/scalable/apps/ragdesk.svg
# The vault is not touched: it lives in the data folder (~/.local/share/RagDesk by default).
# Installing again replaces the previous version in place. Undo with uninstall.sh.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
PREFIX=${PREFIX:-$HOME/.local}
DATA=${XDG_DATA_HOME:-$HOME/.local/share}

if [ $# -ge 1 ]; then
    bundle=$1
elif [ -x "$here/ragdesk/ragdesk" ]; then
    bundle=$here/ragdesk
else
    bundle=$here/../../dist/ragdesk
fi
[ -x "$bundle/ragdesk" ] || { echo "install.sh: no RagDesk bundle at $bundle (build it with make bundle)" >&2; exit 1; }
bundle=$(cd "$bundle" && pwd)

# The application icon (resources/icons/app.svg) ships inside the bundle.
icon=$bundle/_internal/resources/icons/app.svg
[ -f "$icon" ] || icon=$here/../../resources/icons/app.svg
desktop=$here/ragdesk.desktop

app=$PREFIX/lib/ragdesk
mkdir -p "$PREFIX/lib" "$PREFIX/bin" "$DATA/applications" "$DATA/icons/hicolor/scalable/apps"

# Copy next to the target, then swap, so a failed copy never leaves half an installation.
rm -rf "$app.new"
cp -R "$bundle" "$app.new"
rm -rf "$app.old"
[ -e "$app" ] && mv "$app" "$app.old"
mv "$app.new" "$app"
rm -rf "$app.old"

ln -sfn "$app/ragdesk" "$PREFIX/bin/ragdesk"
cp "$icon" "$DATA/icons/hicolor/scalable/apps/ragdesk.svg"
sed "s|@EXEC@|$app/ragdesk|g" "$desktop" > "$DATA/applications/ragdesk.desktop"
chmod 0644 "$DATA/applications/ragdesk.desktop"

# Refresh the menu and icon caches where those tools exist (they are optional).
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$DATA/applications" || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$DATA/icons/hicolor" || true

version=$("$app/ragdesk" --version 2>/dev/null || echo "RagDesk")
echo "Installed $version into $app"
echo "  command:    $PREFIX/bin/ragdesk"
echo "  menu entry: $DATA/applications/ragdesk.desktop"
case ":$PATH:" in
    *":$PREFIX/bin:"*) ;;
    *) echo "  note: $PREFIX/bin is not on your PATH; add it to use 'ragdesk' in a terminal" ;;
esac
