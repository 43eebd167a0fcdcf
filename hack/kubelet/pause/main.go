// pause: the sandbox process of every pod on the kubelet nodes of the local cluster (stands in
// for registry.k8s.io/pause, which cannot be pulled here). It holds the pod's namespaces, sleeps
// until SIGINT or SIGTERM and reaps the zombies it inherits. Built static by hack/kubelet/images.ts.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
