// pmv-probe: the node agent's raw-socket helper for LAN conflict detection (docs/ipv6.md).
// Standard library only, static (CGO_ENABLED=0). Node.js has no AF_PACKET, so the agent runs
// this for each batch of probes:
//
//	pmv-probe -i <parent> [-w 300ms] <ip>...
//
// For each IPv4 address it sends an ARP probe as RFC 5227 §2.1.1 defines it (ARP request,
// sender hardware address = the interface's MAC, sender IP 0.0.0.0, target hardware address
// zero, broadcast); for each IPv6 address a duplicate-address-detection neighbour solicitation
// (RFC 4862 §5.4.2: source ::, destination the target's solicited-node multicast group, hop
// limit 255, no source link-layer option). A host that holds the address answers the ARP probe
// with an ARP reply and the DAD solicitation with a neighbour advertisement to all-nodes
// (RFC 4861 §7.2.4). Every answer seen within the wait is printed as one JSON line:
//
//	{"ip":"198.18.100.7","mac":"52:54:00:12:34:56"}
//
// Exit 0 when probing worked (answers or not), 2 on usage errors, 1 on socket errors.
package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

const (
	ethPARP  = 0x0806
	ethPIPv6 = 0x86dd
)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

type answer struct {
	IP  string `json:"ip"`
	MAC string `json:"mac"`
}

func main() {
	ifname := flag.String("i", "", "interface to probe on (the subnet's parent)")
	wait := flag.Duration("w", 300*time.Millisecond, "how long to listen for answers after the last probe")
	flag.Parse()
	if *ifname == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: pmv-probe -i <interface> [-w 300ms] <ip>...")
		os.Exit(2)
	}
	var v4, v6 []netip.Addr
	for _, a := range flag.Args() {
		ip, err := netip.ParseAddr(a)
		if err != nil || ip.Zone() != "" {
			fmt.Fprintf(os.Stderr, "not an IP address: %s\n", a)
			os.Exit(2)
		}
		if ip.Is4() || ip.Is4In6() {
			v4 = append(v4, ip.Unmap())
		} else {
			v6 = append(v6, ip)
		}
	}
	ifi, err := net.InterfaceByName(*ifname)
	if err != nil {
		fail(err)
	}
	if len(ifi.HardwareAddr) != 6 {
		fail(fmt.Errorf("%s has no Ethernet address", *ifname))
	}
	want := map[netip.Addr]bool{}
	for _, a := range append(append([]netip.Addr{}, v4...), v6...) {
		want[a] = true
	}
	out := json.NewEncoder(os.Stdout)
	seen := map[string]bool{}
	emit := func(ip netip.Addr, mac net.HardwareAddr) {
		k := ip.String() + "|" + mac.String()
		if !want[ip] || seen[k] || bytesEqual(mac, ifi.HardwareAddr) {
			return
		}
		seen[k] = true
		_ = out.Encode(answer{IP: ip.String(), MAC: mac.String()})
	}
	deadline := time.Now().Add(*wait)
	done := make(chan error, 2)
	if len(v4) > 0 {
		fd, err := open(ifi, ethPARP)
		if err != nil {
			fail(err)
		}
		for _, ip := range v4 {
			if err := send(fd, ifi, broadcast, arpProbe(ifi.HardwareAddr, ip)); err != nil {
				fail(err)
			}
		}
		go func() { done <- listen(fd, deadline, parseARP, emit) }()
	} else {
		done <- nil
	}
	if len(v6) > 0 {
		fd, err := open(ifi, ethPIPv6)
		if err != nil {
			fail(err)
		}
		for _, ip := range v6 {
			dst, frame := dadSolicitation(ifi.HardwareAddr, ip)
			if err := send(fd, ifi, dst, frame); err != nil {
				fail(err)
			}
		}
		go func() { done <- listen(fd, deadline, parseNA, emit) }()
	} else {
		done <- nil
	}
	for i := 0; i < 2; i++ {
		if err := <-done; err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "pmv-probe: %v\n", err)
	os.Exit(1)
}

func bytesEqual(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func open(ifi *net.Interface, proto uint16) (int, error) {
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_DGRAM, int(htons(proto)))
	if err != nil {
		return -1, fmt.Errorf("AF_PACKET socket: %w (the agent needs CAP_NET_RAW)", err)
	}
	sa := &syscall.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifi.Index}
	if err := syscall.Bind(fd, sa); err != nil {
		return -1, fmt.Errorf("bind to %s: %w", ifi.Name, err)
	}
	return fd, nil
}

// send writes one payload (SOCK_DGRAM: the kernel adds the Ethernet header).
func send(fd int, ifi *net.Interface, dst net.HardwareAddr, payload []byte) error {
	proto := uint16(ethPARP)
	if payload[0]>>4 == 6 {
		proto = ethPIPv6
	}
	sa := &syscall.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifi.Index, Halen: 6}
	copy(sa.Addr[:], dst)
	return syscall.Sendto(fd, payload, 0, sa)
}

type parser func(payload []byte, from net.HardwareAddr) (netip.Addr, net.HardwareAddr, bool)

func listen(fd int, deadline time.Time, parse parser, emit func(netip.Addr, net.HardwareAddr)) error {
	defer syscall.Close(fd)
	buf := make([]byte, 2048)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		tv := syscall.NsecToTimeval(left.Nanoseconds())
		if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		n, from, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
				continue
			}
			return err
		}
		ll, ok := from.(*syscall.SockaddrLinklayer)
		if !ok || ll.Pkttype == 4 /* PACKET_OUTGOING */ {
			continue
		}
		if ip, mac, ok := parse(buf[:n], net.HardwareAddr(ll.Addr[:ll.Halen])); ok {
			emit(ip, mac)
		}
	}
}

// arpProbe: RFC 5227 ARP probe for ip (sender IP all zero).
func arpProbe(mac net.HardwareAddr, ip netip.Addr) []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint16(b[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(b[2:], 0x0800) // IPv4
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], 1) // request
	copy(b[8:14], mac)
	// b[14:18] sender IP 0.0.0.0, b[18:24] target MAC zero
	t := ip.As4()
	copy(b[24:28], t[:])
	return b
}

// parseARP: an ARP packet whose sender IP is an address we probe is an answer from the sender
// MAC (a reply, or the holder's own probe or announcement).
func parseARP(p []byte, _ net.HardwareAddr) (netip.Addr, net.HardwareAddr, bool) {
	if len(p) < 28 || binary.BigEndian.Uint16(p[2:]) != 0x0800 || p[4] != 6 || p[5] != 4 {
		return netip.Addr{}, nil, false
	}
	spa := netip.AddrFrom4([4]byte{p[14], p[15], p[16], p[17]})
	if spa.IsUnspecified() {
		return netip.Addr{}, nil, false // someone else's probe
	}
	return spa, net.HardwareAddr(append([]byte{}, p[8:14]...)), true
}

// dadSolicitation: the IPv6 packet of a DAD neighbour solicitation for ip and its multicast MAC.
func dadSolicitation(mac net.HardwareAddr, ip netip.Addr) (net.HardwareAddr, []byte) {
	t := ip.As16()
	dst := [16]byte{0xff, 0x02, 10: 0, 11: 0x01, 12: 0xff, 13: t[13], 14: t[14], 15: t[15]}
	icmp := make([]byte, 24)
	icmp[0] = 135 // neighbour solicitation
	copy(icmp[8:], t[:])
	src := [16]byte{}
	binary.BigEndian.PutUint16(icmp[2:], checksum(src, dst, icmp))
	pkt := make([]byte, 40+len(icmp))
	pkt[0] = 0x60
	binary.BigEndian.PutUint16(pkt[4:], uint16(len(icmp)))
	pkt[6] = 58 // ICMPv6
	pkt[7] = 255
	copy(pkt[8:24], src[:])
	copy(pkt[24:40], dst[:])
	copy(pkt[40:], icmp)
	return net.HardwareAddr{0x33, 0x33, 0xff, t[13], t[14], t[15]}, pkt
}

// parseNA: a neighbour advertisement for an address we probe; the MAC is the target link-layer
// option's, else the frame's source.
func parseNA(p []byte, from net.HardwareAddr) (netip.Addr, net.HardwareAddr, bool) {
	if len(p) < 40+24 || p[0]>>4 != 6 || p[6] != 58 || p[40] != 136 {
		return netip.Addr{}, nil, false
	}
	var t [16]byte
	copy(t[:], p[48:64])
	mac := from
	for o := p[64:]; len(o) >= 8; {
		l := int(o[1]) * 8
		if l == 0 || l > len(o) {
			break
		}
		if o[0] == 2 && l >= 8 { // target link-layer address
			mac = net.HardwareAddr(append([]byte{}, o[2:8]...))
		}
		o = o[l:]
	}
	return netip.AddrFrom16(t), mac, true
}

func checksum(src, dst [16]byte, icmp []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	var l [8]byte
	binary.BigEndian.PutUint32(l[0:], uint32(len(icmp)))
	l[7] = 58
	add(l[:])
	add(icmp)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
