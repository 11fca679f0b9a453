#!/bin/busybox sh
# The guest's first process (in its initramfs): the host's root, read-only over virtio-9p,
# under a tmpfs overlay becomes the guest's root; the guest kernel's modules (tag "modules")
# are mounted at /lib/modules and the run's folder (tag "board") at /board, whose
# guest-agent.sh then runs.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in /modules/*.ko; do   # numbered in load order, dependencies first
  insmod "$m" || echo "board: insmod $m failed"
done
mkdir -p /host /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /host || { echo "board: no host root"; poweroff -f; }
mount -t tmpfs -o mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot || { echo "board: no overlay"; poweroff -f; }
mkdir -p /newroot/board /newroot/lib/modules
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 board /newroot/board
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 modules /newroot/lib/modules
for d in proc sys dev; do mount --move "/$d" "/newroot/$d"; done
exec switch_root /newroot /bin/sh /board/guest-agent.sh
