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
# The window needs the X11 client libraries Qt's xcb plugin links to (the bundle carries Qt, not
# these). Debian/Ubuntu package names (Fedora, Arch, openSUSE: `ragdesk doctor` names yours):
DESKTOP_PACKAGES="libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-randr0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0 libx11-xcb1 libegl1 libgl1 libfontconfig1 libdbus-1-3"
plugin=$(find "$app" -path '*platforms/libqxcb.so' 2>/dev/null | head -n 1)
if [ -n "$plugin" ] && command -v ldd >/dev/null 2>&1 && ldd "$plugin" 2>/dev/null | grep -q "not found"; then
    echo "  the window needs system libraries that are missing:" $(ldd "$plugin" | awk '/not found/ {print $1}' | sort -u)
    echo "  Debian/Ubuntu: sudo apt-get install $DESKTOP_PACKAGES   (others: run 'ragdesk doctor')"
fi
case ":$PATH:" in
    *":$PREFIX/bin:"*) ;;
    *) echo "  note: $PREFIX/bin is not on your PATH; add it to use 'ragdesk' in a terminal" ;;
esac
