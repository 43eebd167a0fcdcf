module github.com/pepr-macvlan/pepr-macvlan/cni

go 1.23.0

require (
	github.com/containernetworking/cni v1.3.0
	github.com/containernetworking/plugins v1.7.1
	github.com/vishvananda/netlink v1.3.1-0.20250303224720-0e7078ed04c8
	golang.org/x/sys v0.32.0
)

require github.com/vishvananda/netns v0.0.5 // indirect
