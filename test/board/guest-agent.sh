# Runs in the guest as its first process after switch_root: fresh /run and /tmp, then the
# commands the host writes into /board, in order: cmd-N.sh runs with its output in
# cmd-N.out and its exit status in cmd-N.done. The host powers the guest off.
set -u
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/udev /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
# Host folders kept across boots (Board's `persist`): a 9p tag and a guest path per line.
if [ -f /board/mounts ]; then
  while read -r tag dir; do
    mkdir -p "$dir" && mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 "$tag" "$dir"
  done < /board/mounts
fi
hostname board
ip link set lo up
cd /board
echo "$(cut -d' ' -f1 /proc/uptime)" > agent-ready
n=1
while :; do
  if [ -f "cmd-$n.sh" ]; then
    sh "cmd-$n.sh" > "cmd-$n.out" 2>&1
    echo $? > "cmd-$n.done.tmp" && mv "cmd-$n.done.tmp" "cmd-$n.done"
    n=$((n + 1))
  else
    sleep 0.1
  fi
done
