// pepr-macvlan-reply: a chained CNI plugin, run after macvlan in the managed NAD's plugin list.
//
// A dual-NIC pod has two addresses: eth0 from the cluster network and net1 on the LAN. The kernel
// routes a reply by its destination only, so a reply to a connection that arrived on eth0 leaves by
// net1 whenever its destination lies on the LAN: kube-proxy masquerades NodePort and external
// traffic to a node's LAN address, so a backend on another node answers that node straight over the
// LAN, and the node that forwarded the request to it never sees the reply. Its conntrack marks the
// next packet INVALID and kube-proxy drops it (measured: half the NodePort calls to macvlan-backed
// Services hung).
//
// This plugin adds source-based routing for the pod's other interfaces: every global address of an
// interface other than lo and net1 gets a rule "from <address> lookup <table>", and that table holds
// copies of the main table's routes through that interface. Replies from eth0's address then leave
// by eth0; everything the pod starts itself is routed as before (the main table picks the
// interface and, with it, the source address). A single-NIC pod has no other interface: nothing to do.
//
// ADD passes the previous result through; DEL has nothing to undo (the rules and table live in the
// pod's network namespace, which goes away with it); CHECK verifies the rules.
package main

import (
	"encoding/json"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// Table and rule priority used unless the NAD sets them. The priority sits before the main
// table's rule (32766) and leaves room below it for the cluster's own rules.
const (
	defaultTable    = 2718
	defaultPriority = 30000
)

type config struct {
	types.NetConf
	Table    int `json:"table,omitempty"`
	Priority int `json:"priority,omitempty"`
}

func parseConfig(stdin []byte) (*config, error) {
	c := &config{Table: defaultTable, Priority: defaultPriority}
	if err := json.Unmarshal(stdin, c); err != nil {
		return nil, fmt.Errorf("pepr-macvlan-reply: cannot read the network configuration: %v", err)
	}
	if c.RawPrevResult != nil {
		if err := version.ParsePrevResult(&c.NetConf); err != nil {
			return nil, fmt.Errorf("pepr-macvlan-reply: cannot read the previous result: %v", err)
		}
	}
	if c.Table <= 0 || c.Table == 253 || c.Table == 254 || c.Table == 255 {
		return nil, fmt.Errorf("pepr-macvlan-reply: table %d is reserved; pick another", c.Table)
	}
	return c, nil
}

// otherInterfaces are the links that are neither loopback nor the interface being added.
func otherInterfaces(ifName string) ([]netlink.Link, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	var out []netlink.Link
	for _, l := range links {
		a := l.Attrs()
		if a.Name == ifName || a.Flags&net.FlagLoopback != 0 {
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

func globalAddresses(l netlink.Link) ([]netlink.Addr, error) {
	addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	var out []netlink.Addr
	for _, a := range addrs {
		if a.IP.IsGlobalUnicast() {
			out = append(out, a)
		}
	}
	return out, nil
}

// copyRoutes puts the main table's routes through link l into table.
func copyRoutes(l netlink.Link, table int) error {
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL,
		&netlink.Route{LinkIndex: l.Attrs().Index, Table: 254}, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return err
	}
	for _, r := range routes {
		if r.Dst != nil && r.Dst.IP.IsLinkLocalUnicast() {
			continue
		}
		r.Table = table
		if err := netlink.RouteReplace(&r); err != nil {
			return fmt.Errorf("route %s via %s dev %s in table %d: %v", r.Dst, r.Gw, l.Attrs().Name, table, err)
		}
	}
	return nil
}

func sourceRule(ip net.IP, table, priority int) *netlink.Rule {
	rule := netlink.NewRule()
	rule.Table = table
	rule.Priority = priority
	bits := 32
	rule.Family = netlink.FAMILY_V4
	if ip.To4() == nil {
		bits = 128
		rule.Family = netlink.FAMILY_V6
	}
	rule.Src = &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}
	return rule
}

func hasRule(want *netlink.Rule) (bool, error) {
	rules, err := netlink.RuleList(want.Family)
	if err != nil {
		return false, err
	}
	for _, r := range rules {
		if r.Table == want.Table && r.Src != nil && r.Src.String() == want.Src.String() {
			return true, nil
		}
	}
	return false, nil
}

// setUp runs inside the pod's network namespace. Each interface gets its own table (table,
// table+1, …) so two interfaces' default routes never meet.
func setUp(c *config, ifName string) error {
	links, err := otherInterfaces(ifName)
	if err != nil {
		return err
	}
	for i, l := range links {
		addrs, err := globalAddresses(l)
		if err != nil || len(addrs) == 0 {
			continue
		}
		table := c.Table + i
		if err := copyRoutes(l, table); err != nil {
			return err
		}
		for _, a := range addrs {
			rule := sourceRule(a.IP, table, c.Priority)
			if ok, err := hasRule(rule); err != nil {
				return err
			} else if ok {
				continue
			}
			if err := netlink.RuleAdd(rule); err != nil {
				return fmt.Errorf("rule from %s lookup %d: %v", a.IP, table, err)
			}
		}
	}
	return nil
}

func check(c *config, ifName string) error {
	links, err := otherInterfaces(ifName)
	if err != nil {
		return err
	}
	for i, l := range links {
		addrs, _ := globalAddresses(l)
		for _, a := range addrs {
			ok, err := hasRule(sourceRule(a.IP, c.Table+i, c.Priority))
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("pepr-macvlan-reply: no rule from %s (dev %s)", a.IP, l.Attrs().Name)
			}
		}
	}
	return nil
}

func inPodNetns(args *skel.CmdArgs, f func(*config) error) (*config, error) {
	c, err := parseConfig(args.StdinData)
	if err != nil {
		return nil, err
	}
	netns, err := ns.GetNS(args.Netns)
	if err != nil {
		return nil, fmt.Errorf("pepr-macvlan-reply: cannot open netns %q: %v", args.Netns, err)
	}
	defer netns.Close()
	return c, netns.Do(func(ns.NetNS) error { return f(c) })
}

func cmdAdd(args *skel.CmdArgs) error {
	c, err := inPodNetns(args, func(c *config) error {
		if err := setUp(c, args.IfName); err != nil {
			return fmt.Errorf("pepr-macvlan-reply: %v", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if c.PrevResult == nil {
		return types.PrintResult(&current.Result{CNIVersion: c.CNIVersion}, c.CNIVersion)
	}
	return types.PrintResult(c.PrevResult, c.CNIVersion)
}

func cmdDel(*skel.CmdArgs) error { return nil }

func cmdCheck(args *skel.CmdArgs) error {
	_, err := inPodNetns(args, func(c *config) error { return check(c, args.IfName) })
	return err
}

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck},
		version.All, "pepr-macvlan-reply: replies leave by the interface their connection came in on")
}
