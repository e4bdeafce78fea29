"""A real Kubernetes control plane for the tests and for `make sandbox`.

build.py compiles kube-apiserver, kube-controller-manager, kube-scheduler and etcd from
the upstream Go modules (go.mod here, no code of ours); harness.py runs them as kubeadm
would, with certificates from pki.py; nodes.py simulates the nodes; faults.py is a
fault-injecting proxy in front of the real apiserver; forward.py reaches etcd and
kube-apiserver in their network namespace; sandbox.py is `make sandbox`.
"""
