#!/usr/bin/env bash
# `npm run demo`: the product end to end on the embedded local cluster, one visible step at a time.
# Real kubelets + containerd on each node and `npx pepr deploy`, as a user installs it.
set -euo pipefail
cd "$(dirname "$0")/.."
export KUBECONFIG="$PWD/.cluster/kubeconfig"
B=$'\033[1m'; G=$'\033[32m'; C=$'\033[36m'; R=$'\033[0m'
n=0
step() { n=$((n + 1)); printf '\n%s== %d. %s%s\n' "$B" "$n" "$*" "$R"; }
show() { printf '%s$ %s%s\n' "$C" "$*" "$R"; "$@"; }
cluster() { bash hack/cluster.sh "$@"; }
podsof() { kubectl -n demo get pods -l "app=$1" --sort-by=.metadata.name \
  -o custom-columns='POD:.metadata.name,NODE:.spec.nodeName,ETH0:.status.podIP,NET1:.metadata.annotations.macvlan\.dev/ip,MAC:.metadata.annotations.macvlan\.dev/mac'; }
trap 'printf "\n%sThe demo stopped at step %d.%s Logs: .cluster/logs, kubectl -n pepr-system logs. Stop everything with: npm run cluster -- down\n" "$B" "$n" "$R"' ERR

step "Installing npm packages (first run only)"
bash hack/ensure-deps.sh

step "Starting the local cluster: etcd, kube-apiserver, controller-manager, scheduler, 2 nodes (containerd + kubelet, Multus, kube-proxy, CoreDNS)"
cluster up --nodes 2
show kubectl get nodes -o wide

step "Installing as a user does: kubectl apply -f crds/, npx pepr deploy, the agent DaemonSet"
PMV_INSTALL=pepr-deploy npx tsx hack/module/deploy.ts up
show kubectl -n pepr-system get pods -o wide

step "Creating a MacvlanSubnet: pods lease 198.18.100.10-250 on the LAN 198.18.0.0/16"
show cat examples/subnet.yaml
show kubectl apply -f examples/subnet.yaml
kubectl wait --for=condition=Ready mvs/lan --timeout=60s >/dev/null

step "Opting a namespace in (label macvlan.dev/subnet=lan) and starting a Deployment, a StatefulSet and an exposed Service"
show kubectl apply -f examples/workloads.yaml
show kubectl -n demo rollout status deploy/web --timeout=120s
show kubectl -n demo rollout status sts/db --timeout=120s

step "Each pod has eth0 on the cluster network and net1 on the LAN, with a leased IP and a stable MAC"
podsof web; podsof db

step "The leases and the subnet's accounting (leases without a pod are the admission replicas' pools)"
bound() { kubectl get mvl -l macvlan.dev/pod-namespace=demo -o jsonpath='{range .items[?(@.status.phase=="Bound")]}b{end}'; }
for _ in $(seq 60); do [[ $(bound) == bbbbb ]] && break; sleep 1; done
[[ $(bound) == bbbbb ]] || { echo "the 5 pods' leases are not all Bound after 60 s"; false; }
show kubectl get mvs,mvl

step "Ping between pods on two nodes over net1 (the LAN, no overlay)"
a=$(kubectl -n demo get pods -l app=web -o jsonpath='{range .items[?(@.spec.nodeName=="pmv-node-1")]}{.metadata.name}{"\n"}{end}' | head -1)
b_ip=$(kubectl -n demo get pods -l app=web -o jsonpath='{range .items[?(@.spec.nodeName=="pmv-node-2")]}{.metadata.annotations.macvlan\.dev/ip}{"\n"}{end}' | head -1)
show cluster exec "demo/$a" -- ping -c 3 -I net1 "$b_ip"

step "A node reaches its own macvlan pod through the agent's shim (plain macvlan forbids this)"
own_ip=$(kubectl -n demo get pod "$a" -o jsonpath='{.metadata.annotations.macvlan\.dev/ip}')
show cluster exec node/pmv-node-1 -- ip route show "$own_ip"
show cluster exec node/pmv-node-1 -- ping -c 2 "$own_ip"

step "Service discovery: the exposed Service has a headless twin listing the macvlan IPs"
show kubectl -n demo get endpointslices -l kubernetes.io/service-name=web-macvlan -o wide

step "DNS (CoreDNS): web-macvlan resolves to the pods' macvlan IPs, web to its ClusterIP"
show kubectl -n demo exec db-0 -- nslookup web-macvlan.demo.svc.cluster.local || true
show kubectl -n demo exec db-0 -- nslookup web.demo.svc.cluster.local || true

step "A macvlan pod calls the ClusterIP over eth0 (kube-proxy on its node picks a web pod)"
cip=$(kubectl -n demo get service web -o jsonpath='{.spec.clusterIP}')
# busybox httpd serves /tmp, which has no index: any HTTP status proves the call got through.
show cluster exec "demo/$a" -- curl -sS -m 5 -o /dev/null -w 'HTTP %{http_code} from %{remote_ip}:%{remote_port}\n' "http://$cip/" || true

step "Gratuitous ARP: a new pod's net1 announces its address from its MAC (tcpdump on the LAN bridge)"
cap=$(mktemp)
ip netns exec pmv-lan timeout 60 tcpdump -i br-lan -n -e -l arp >"$cap" 2>/dev/null &
tcpdump_pid=$!
sleep 1
show kubectl -n demo scale deploy/web --replicas=4
kubectl -n demo rollout status deploy/web --timeout=120s >/dev/null
new=$(kubectl -n demo get pods -l app=web --sort-by=.metadata.creationTimestamp -o jsonpath='{.items[-1:].metadata.annotations.macvlan\.dev/ip} {.items[-1:].metadata.annotations.macvlan\.dev/mac}')
read -r new_ip new_mac <<<"$new"
for _ in $(seq 10); do grep -q "tell $new_ip" "$cap" && break; sleep 1; done
kill "$tcpdump_pid" 2>/dev/null || true
printf 'new pod: %s %s\n' "$new_ip" "$new_mac"
grep -F "$new_ip" "$cap" | head -3 || echo "(no announcement captured)"
rm -f "$cap"

step "A StatefulSet pod keeps its address when it is deleted and comes back"
before=$(kubectl -n demo get pod db-0 -o jsonpath='{.metadata.annotations.macvlan\.dev/ip}')
show kubectl -n demo delete pod db-0 --wait=true
for _ in $(seq 60); do kubectl -n demo get pod db-0 >/dev/null 2>&1 && break; sleep 1; done
kubectl -n demo wait --for=condition=Ready pod/db-0 --timeout=90s >/dev/null
after=$(kubectl -n demo get pod db-0 -o jsonpath='{.metadata.annotations.macvlan\.dev/ip}')
printf 'db-0 before: %s   after: %s   %s\n' "$before" "$after" "$([[ $before == "$after" ]] && echo "${G}same address${R}" || echo "CHANGED")"

step "A request the product refuses: a fixed IP that another pod holds"
taken=$(kubectl -n demo get pod "$a" -o jsonpath='{.metadata.annotations.macvlan\.dev/ip}')
printf '%s$ kubectl -n demo run thief --image=busybox:1.36 --annotations=macvlan.dev/ip=%s -- sleep 3600%s\n' "$C" "$taken" "$R"
kubectl -n demo run thief --image=busybox:1.36 --annotations="macvlan.dev/ip=$taken" -- sleep 3600 2>&1 || true

printf '\n%sDone.%s Look around with:\n' "$B" "$R"
cat <<EOM
  export KUBECONFIG=$KUBECONFIG
  kubectl get mvs,mvl                      # subnets and leases
  kubectl -n demo get pods -o wide         # the workloads
  kubectl describe mvs lan                 # status, per-node readiness, events
  npm run cluster -- exec demo/<pod> -- ip addr     # inside a pod's network namespace
  npm run cluster -- exec node/pmv-node-1 -- ip route   # on a node
Stop everything with: npm run cluster -- down
EOM
