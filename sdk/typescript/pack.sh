#!/bin/sh
# Packs the SDK as an npm tarball into the directory $1 and prints the
# tarball's path: npm pack of a copy of the package (package.json, README,
# src, scripts, the repository's LICENSE) whose version is tools/sdk-version's, the
# one version number of the SDK packages. The committed package.json keeps
# its placeholder version. `make sdk-package-typescript` runs it with
# dist/; the tests with a temporary directory.
set -eu
dest=${1:?usage: pack.sh DEST_DIR}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
version=$("$root/tools/sdk-version")
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -R "$here/package.json" "$here/README.md" "$here/src" "$here/scripts" "$stage/"
cp "$root/LICENSE" "$stage/"
cd "$stage"
npm pkg set "version=$version"
file=$(npm pack --silent --pack-destination "$dest")
echo "$dest/$file"
