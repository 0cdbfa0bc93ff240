#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/hosts/bed.sh - the project's multi-host test bed: test hosts as
# network namespaces joined by veth, for tests, benches and docs.
#
#   bed.sh up N            N hosts (N = 2: one veth pair, point to point;
#                          N >= 3: each host on a bridge in a switch
#                          namespace).  Host i has loopback up, eth0 with
#                          198.18.0.i/24 and 2001:2::i/64, and no other
#                          route: the hosts reach each other and nothing
#                          else.
#   bed.sh down | cleanup  remove every namespace and link of the bed (by
#                          the names it uses; safe to run any time)
#   bed.sh exec I CMD...   run CMD in host I
#   bed.sh addr I [4|6]    host I's address
#   bed.sh ns I            host I's namespace name
#   bed.sh set I KNOB VAL  a per-host knob, printed when applied:
#       mtu 1500|9000|...  eth0's MTU
#       bigtcp on|off      IPv6 BIG TCP: gso_max_size and gro_max_size
#                          185000 on eth0 (off: 65536).  IPv4 stays at 64 KiB:
#                          Debian 12's iproute2 cannot set gso_ipv4_max_size
#       rfs on|off         RPS/RFS on eth0's receive queue: rps_cpus all CPUs,
#                          rps_flow_cnt 4096 (the global rps_sock_flow_entries
#                          is set to 32768 when on)
#       cc NAME            the host's default congestion control
#   bed.sh fault I KIND [ARG]   break host I's network (both directions of
#                          its eth0), printed when applied:
#       loss PCT           drop PCT% of packets at random (nftables numgen;
#                          this kernel has no netem)
#       blackhole          drop every packet
#       rate RATE          shape eth0's egress with tbf, e.g. 2mbit
#       down | up          eth0 down / up (addresses are restored on up)
#       clear              remove loss, blackhole and rate
#
# Root with CAP_NET_ADMIN only.  Names start with $ZC_BED_PREFIX (zcb), so
# several beds never meet and `cleanup` finds leftovers.  Addresses come
# only from the benchmarking ranges 198.18.0.0/15 and 2001:2::/48.
set -euo pipefail

P=${ZC_BED_PREFIX:-zcb}
SW=${P}sw

die() { echo "bed: $*" >&2; exit 1; }
say() { echo "bed: $*" >&2; }

need_root() {
	[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces need CAP_NET_ADMIN)"
	ip netns list >/dev/null 2>&1 || die "cannot list network namespaces (no CAP_NET_ADMIN?)"
	if ! ip netns add "${P}probe" 2>/dev/null; then
		die "cannot create a network namespace (no CAP_NET_ADMIN?)"
	fi
	ip netns del "${P}probe"
}

ns() { echo "${P}h$1"; }
in_ns() { local i=$1; shift; ip netns exec "$(ns "$i")" "$@"; }
addr4() { echo "198.18.0.$1"; }
addr6() { echo "2001:2::$1"; }

host_addrs() {
	local i=$1
	in_ns "$i" ip addr replace "$(addr4 "$i")/24" dev eth0
	in_ns "$i" ip -6 addr replace "$(addr6 "$i")/64" dev eth0 nodad
}

cmd_cleanup() {
	local n
	for n in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		case "$n" in "${P}h"*|"$SW") ip netns del "$n" 2>/dev/null || true ;; esac
	done
	# veth ends left in the root namespace by an interrupted `up`
	for n in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
		case "$n" in "${P}"[0-9]*) ip link del "$n" 2>/dev/null || true ;; esac
	done
}

cmd_up() {
	local n=${1:-2} i
	[[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 2 ] && [ "$n" -le 200 ] ||
		die "up: host count must be 2..200"
	need_root
	cmd_cleanup
	for i in $(seq 1 "$n"); do
		ip netns add "$(ns "$i")"
		in_ns "$i" ip link set lo up
		# Each host sleeps in its own namespace: nothing routes out.
		in_ns "$i" sysctl -qw net.ipv6.conf.all.accept_ra=0
	done
	if [ "$n" -eq 2 ]; then
		ip link add "${P}1" type veth peer name "${P}2"
		for i in 1 2; do
			ip link set "${P}$i" netns "$(ns "$i")" name eth0
		done
	else
		ip netns add "$SW"
		ip -n "$SW" link add br0 type bridge
		ip -n "$SW" link set br0 up
		for i in $(seq 1 "$n"); do
			ip link add "${P}$i" type veth peer name "${P}${i}s"
			ip link set "${P}$i" netns "$(ns "$i")" name eth0
			ip link set "${P}${i}s" netns "$SW" name "p$i"
			# The switch side takes jumbo frames; hosts set their own.
			ip -n "$SW" link set "p$i" mtu 9000 master br0 up
		done
	fi
	for i in $(seq 1 "$n"); do
		in_ns "$i" ip link set eth0 up
		host_addrs "$i"
	done
	say "up: $n hosts ($( [ "$n" -eq 2 ] && echo "veth pair" || echo "bridge" )), $(addr4 1)..$(addr4 "$n"), $(addr6 1)..$(addr6 "$n")"
}

cmd_set() {
	local i=$1 knob=$2 val=${3:-}
	case "$knob" in
	mtu)
		in_ns "$i" ip link set eth0 mtu "$val"
		say "host $i: mtu $val" ;;
	bigtcp)
		local sz=65536
		[ "$val" = on ] && sz=185000
		in_ns "$i" ip link set eth0 gso_max_size "$sz" gro_max_size "$sz"
		say "host $i: BIG TCP $val (IPv6 gso_max_size/gro_max_size $sz; IPv4 stays 65536)" ;;
	rfs)
		local q=/sys/class/net/eth0/queues/rx-0 cpus flows=0
		cpus=$(printf '%x' $(( (1 << $(nproc)) - 1 )))
		if [ "$val" = on ]; then
			flows=4096
			sysctl -qw net.core.rps_sock_flow_entries=32768
		else
			cpus=0
		fi
		in_ns "$i" sh -c "echo $cpus > $q/rps_cpus && echo $flows > $q/rps_flow_cnt"
		say "host $i: RFS $val (rps_cpus $cpus, rps_flow_cnt $flows, rps_sock_flow_entries $(sysctl -n net.core.rps_sock_flow_entries))" ;;
	cc)
		# A namespace may only pick what the root namespace allows.
		local allowed
		allowed=$(sysctl -n net.ipv4.tcp_allowed_congestion_control)
		if ! grep -qw -- "$val" <<<"$allowed"; then
			sysctl -qw net.ipv4.tcp_allowed_congestion_control="$allowed $val"
			say "host $i: added $val to the root namespace's tcp_allowed_congestion_control"
		fi
		in_ns "$i" sysctl -qw net.ipv4.tcp_congestion_control="$val"
		say "host $i: congestion control $val" ;;
	*) die "set: unknown knob '$knob'" ;;
	esac
}

# One nftables table per host holds its loss or blackhole rule.
nft_drop() {
	local i=$1 expr=$2
	in_ns "$i" nft delete table inet zcbed 2>/dev/null || true
	in_ns "$i" nft -f - <<EOF
table inet zcbed {
	chain in { type filter hook input priority 0; iifname "eth0" $expr drop; }
	chain out { type filter hook output priority 0; oifname "eth0" $expr drop; }
}
EOF
}

cmd_fault() {
	local i=$1 kind=$2 arg=${3:-}
	case "$kind" in
	loss)
		[[ "$arg" =~ ^[0-9]+$ ]] && [ "$arg" -le 100 ] || die "fault loss: PCT 0..100"
		nft_drop "$i" "numgen random mod 100 < $arg"
		say "host $i: dropping $arg% of packets both ways" ;;
	blackhole)
		nft_drop "$i" ""
		say "host $i: blackhole (every packet dropped)" ;;
	rate)
		in_ns "$i" tc qdisc replace dev eth0 root tbf rate "$arg" burst 16kb latency 400ms
		say "host $i: egress shaped to $arg (tbf)" ;;
	down)
		in_ns "$i" ip link set eth0 down
		say "host $i: link down" ;;
	up)
		in_ns "$i" ip link set eth0 up
		host_addrs "$i"
		say "host $i: link up" ;;
	clear)
		in_ns "$i" nft delete table inet zcbed 2>/dev/null || true
		in_ns "$i" tc qdisc del dev eth0 root 2>/dev/null || true
		say "host $i: faults cleared" ;;
	*) die "fault: unknown kind '$kind'" ;;
	esac
}

case "${1:-}" in
up) shift; cmd_up "$@" ;;
down|cleanup) cmd_cleanup ;;
exec) shift; i=$1; shift; exec ip netns exec "$(ns "$i")" "$@" ;; # keeps the pid
addr) if [ "${3:-4}" = 6 ]; then addr6 "$2"; else addr4 "$2"; fi ;;
ns) ns "$2" ;;
set) shift; cmd_set "$@" ;;
fault) shift; cmd_fault "$@" ;;
*) sed -n '4,38p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
