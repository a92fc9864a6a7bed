#!/usr/bin/env bash
# Fetches Git's documentation pages (the AsciiDoc .txt sources of its manual
# pages, howtos and technical notes) from Debian's git-doc package into DEST,
# for the fusion lab's "Git docs" tuning set (tests/fixtures/gitdocs/SOURCE.md).
# They are GPL-2, so they are fetched rather than kept in this repository.
#
#   scripts/fetch_gitdocs.sh /var/tmp/gitdocs
#   FUSION_LAB_GITDOCS=/var/tmp/gitdocs cargo bench --bench fusion_lab -- ...
set -euo pipefail
dest=${1:?usage: fetch_gitdocs.sh DEST}
version=${GITDOCS_VERSION:-1:2.39.5-0+deb12u3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download "git-doc=$version" 2>/dev/null; then
    echo "git-doc $version is not in the package index; fetching the current one" >&2
    apt-get download git-doc
fi
dpkg-deb -x git-doc_*.deb x
src=x/usr/share/doc/git-doc
mkdir -p "$dest"
(cd "$src" && find . -name '*.txt' -print0) | while IFS= read -r -d '' page; do
    mkdir -p "$dest/$(dirname "$page")"
    cp -L "$src/$page" "$dest/$page"
done
echo "$(find "$dest" -name '*.txt' | wc -l) pages in $dest (git-doc $(dpkg-deb -f git-doc_*.deb Version))"
