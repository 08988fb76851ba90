"""The guest's own files: init scripts, the udhcpc event script, users, boot loader config.

Every line the guest prints to the console for people and tests starts with `nimbus-guest: `:
  nimbus-guest: lease eth0 10.0.0.11/24 mtu 1450 (uptime 2.41)
  nimbus-guest: metadata hostname vm1 instance-id 6f1c… keys 1
  nimbus-guest: eth0 10.0.0.11/24 mtu 1450
  nimbus-guest: ready: ssh cirros@10.0.0.11 (uptime 4.02)
"""

from __future__ import annotations

# The kernel's command line (SYSLINUX `APPEND`): messages on the VGA console and the serial
# port, /dev/console on the serial port (the last one named), reboot at once on a panic. No
# CPU vulnerability mitigations: under TCG, page-table isolation flushes QEMU's soft TLB on
# every system call (about 0.5 s of a 5 s boot), and this guest holds nothing to protect.
# No crypto self-tests at start: 0.25 s under TCG, for algorithms this guest barely uses.
KERNEL_ARGS = ("console=tty0 console=ttyS0,115200 quiet panic=-1 mitigations=off "
               "cryptomgr.notests")

SYSLINUX_CFG = f"""\
SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  INITRD /initrd.gz
  APPEND {KERNEL_ARGS}
"""

INITTAB = """\
::sysinit:/etc/init.d/rcS
ttyS0::respawn:-/bin/sh
::ctrlaltdel:/sbin/reboot
::shutdown:/etc/init.d/rcK
"""

PASSWD = """\
root:*:0:0:root:/root:/bin/sh
cirros:*:1000:1000:cirros:/home/cirros:/bin/sh
"""

GROUP = """\
root:x:0:
cirros:x:1000:
"""

SHELLS = "/bin/sh\n/bin/ash\n"

PROFILE = """\
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
export PS1='\\u@\\h:\\w\\$ '
"""

# busybox acpid runs /etc/acpi/PWRF/00000080 when the ACPI power button is pressed (QMP
# system_powerdown): a clean poweroff, which is how a soft reboot or stop begins.
ACPI_POWER = """\
#!/bin/sh
echo "nimbus-guest: power button pressed, powering off" > /dev/console
exec /sbin/poweroff
"""

# udhcpc calls this with the event in $1 and the lease in the environment. Classless static
# routes (option 121, $staticroutes: "dest/len gateway ...") win over the router option, as
# RFC 3442 says; `set --` reuses the positional parameters, so $1 is saved first.
UDHCPC_SCRIPT = """\
#!/bin/sh
event="$1"
[ -n "$event" ] || exit 1
say() { echo "nimbus-guest: $*" > /dev/console; }

case "$event" in
deconfig)
    ip -4 addr flush dev "$interface"
    ip link set dev "$interface" up
    ;;
leasefail|nak)
    say "dhcp $event on $interface"
    ;;
bound|renew)
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    old=$(ip -4 -o addr show dev "$interface" scope global | awk '{print $4}')
    if [ -n "$old" ] && [ "$old" != "$ip/${mask:-24}" ]; then
        ip -4 addr flush dev "$interface" scope global
    fi
    ip addr replace "$ip/${mask:-24}" broadcast "${broadcast:-+}" dev "$interface"
    ip -4 route flush dev "$interface" scope global
    if [ -n "$staticroutes" ]; then
        iface="$interface"
        set -- $staticroutes
        while [ $# -ge 2 ]; do
            if [ "$2" = 0.0.0.0 ]; then
                ip route replace "$1" dev "$iface"
            else
                ip route replace "$1" via "$2" dev "$iface"
            fi
            shift 2
        done
    elif [ -n "$router" ]; then
        for gw in $router; do
            ip route replace default via "$gw" dev "$interface"
            break
        done
    fi
    if [ -n "$dns" ]; then
        {
            [ -n "$domain" ] && echo "search $domain"
            for ns in $dns; do echo "nameserver $ns"; done
        } > /etc/resolv.conf
    fi
    echo "$ip" > "/run/dhcp-$interface"
    if [ "$event" = bound ]; then
        up=$(cut -d' ' -f1 /proc/uptime)
        say "lease $interface $ip/${mask:-24} mtu ${mtu:-1500} (uptime $up)"
    fi
    ;;
esac
exit 0
"""

# Run by busybox init before anything else. Nothing here may stop the boot: a missing lease,
# metadata service or key only means fewer lines in the banner.
RCS = """\
#!/bin/sh
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
say() { echo "nimbus-guest: $*"; }
up() { cut -d' ' -f1 /proc/uptime; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /run /tmp /var/log /var/run /etc/dropbear
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
chmod 1777 /tmp

say "init (uptime $(up))"
# The modules in dependency order; the network's come first (modules.py), and DHCP starts
# as soon as eth0 exists, so the lease arrives while the rest load.
dhcp=""
while read -r module; do
    insmod "/lib/modules/$(uname -r)/$module" 2>/dev/null
    if [ -z "$dhcp" ] && [ -e /sys/class/net/eth0 ]; then
        # DHCP on eth0, asking for classless routes and the MTU. udhcpc's first process
        # ends once it has a lease (or has given up for now), leaving a daemon that renews
        # it and keeps trying: `wait` below waits for that first process.
        ip link set eth0 up
        udhcpc -b -i eth0 -s /usr/share/udhcpc/default.script -O staticroutes -O mtu \\
            -t 5 -T 2 -A 5 -p /run/udhcpc.eth0.pid >/dev/null 2>&1 &
        dhcp=$!
    fi
done < /etc/nimbus/modules

hostname nimbus
ip link set lo up
syslogd -C64
klogd
acpid

if [ -n "$dhcp" ]; then
    wait "$dhcp"
else
    say "no eth0"
fi

# Metadata (OpenStack format). busybox 1.35's `wget -T` crashes: `timeout` bounds each try.
MD=http://169.254.169.254/openstack/latest
fetch() { timeout 5 wget -q -O - "$1" 2>/dev/null; }
json_str() { tr -d '\\n' | sed -n "s/.*\\"$1\\": *\\"\\([^\\"]*\\)\\".*/\\1/p"; }
meta=""
if [ -s /run/dhcp-eth0 ]; then
    # Tries for about 10 s: a service that refuses is asked again each second, one that
    # hangs gets two tries.
    until=$(( $(cut -d. -f1 /proc/uptime) + 10 ))
    while :; do
        meta=$(fetch "$MD/meta_data.json") && [ -n "$meta" ] && break
        meta=""
        [ "$(cut -d. -f1 /proc/uptime)" -lt "$until" ] || break
        sleep 1
    done
fi
keys=0
if [ -n "$meta" ]; then
    printf '%s\\n' "$meta" > /run/meta_data.json
    name=$(printf '%s' "$meta" | json_str hostname)
    uuid=$(printf '%s' "$meta" | json_str uuid)
    key=$(printf '%s' "$meta" | tr -d '\\n' |
          sed -n 's/.*"public_keys": *{ *"[^"]*": *"\\([^"]*\\)".*/\\1/p' | sed 's/\\\\n$//')
    name=${name%%.*}
    if [ -n "$name" ]; then
        hostname "$name"
        echo "$name" > /etc/hostname
        echo "127.0.1.1 $name" >> /etc/hosts
    fi
    [ -n "$uuid" ] && echo "$uuid" > /run/instance-id
    if [ -n "$key" ]; then
        keys=1
        for home in /root /home/cirros; do
            mkdir -p "$home/.ssh"
            echo "$key" > "$home/.ssh/authorized_keys"
            chmod 700 "$home/.ssh"
            chmod 600 "$home/.ssh/authorized_keys"
        done
        chown -R 1000:1000 /home/cirros
    fi
    say "metadata hostname $(hostname) instance-id ${uuid:--} keys $keys (uptime $(up))"
    fetch "$MD/user_data" > /run/user-data || rm -f /run/user-data
else
    say "metadata: none (no answer from 169.254.169.254)"
fi

# SSH: dropbear makes its host keys on the first connection (-R).
dropbear -R -p 22 -P /run/dropbear.pid && say "dropbear listening on port 22"

# User data: a script (#!) runs as root; its output goes to the console and
# /var/log/user-data.log. Waited for up to 10 s so that the banner comes after it.
if [ -s /run/user-data ] && [ "$(head -c 2 /run/user-data)" = '#!' ]; then
    chmod 700 /run/user-data
    say "running user-data"
    ( /run/user-data 2>&1 | tee /var/log/user-data.log ) &
    pid=$!
    for i in $(seq 20); do
        kill -0 $pid 2>/dev/null || break
        sleep 0.5
    done
fi

# The banner.
for dev in $(ls /sys/class/net); do
    [ "$dev" = lo ] && continue
    for addr in $(ip -4 -o addr show dev "$dev" scope global | awk '{print $4}'); do
        say "$dev $addr mtu $(cat /sys/class/net/$dev/mtu)"
    done
done
say "hostname $(hostname) instance-id $(cat /run/instance-id 2>/dev/null || echo -)"
ip=$(cat /run/dhcp-eth0 2>/dev/null)
say "ready: ssh cirros@${ip:-<no address>} (uptime $(up))"
"""

RCK = """\
#!/bin/sh
echo "nimbus-guest: shutting down"
[ -f /run/dropbear.pid ] && kill "$(cat /run/dropbear.pid)" 2>/dev/null
[ -f /run/udhcpc.eth0.pid ] && kill "$(cat /run/udhcpc.eth0.pid)" 2>/dev/null
umount -a -r 2>/dev/null
sync
"""

# path in the guest -> (mode, text)
FILES: dict[str, tuple[int, str]] = {
    "etc/inittab": (0o644, INITTAB),
    "etc/init.d/rcS": (0o755, RCS),
    "etc/init.d/rcK": (0o755, RCK),
    "etc/passwd": (0o644, PASSWD),
    "etc/group": (0o644, GROUP),
    "etc/shells": (0o644, SHELLS),
    "etc/profile": (0o644, PROFILE),
    "etc/hosts": (0o644, "127.0.0.1 localhost\n"),
    "etc/hostname": (0o644, "nimbus\n"),
    "etc/acpi/PWRF/00000080": (0o755, ACPI_POWER),
    "usr/share/udhcpc/default.script": (0o755, UDHCPC_SCRIPT),
}
